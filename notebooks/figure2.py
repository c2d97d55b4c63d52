# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Figure 2: the DDGD pipeline
#
# The paper's Figure 2 shows one step of the distillation: real images become latents, the
# diffusion model is fine-tuned on them with the diffusion loss, and two memories, one of real
# latents and one of generated latents, add the representativeness and diversity terms. Here the
# diagram is drawn by `ddgd.pages.figure2.draw_pipeline` from a resolved configuration, so every number
# on it (the loss weights, the memory sizes, the update rule, the sampler and the evaluation
# networks) is the value the code would run with, not a number typed into a picture.

# %% tags=["parameters"]
preset = "imagewoof"  # a name of ddgd.config.PRESETS whose values label the diagram
output_dir = "runs/reproduce/figure2"  # where figure2.png and figure2.pdf are written

# %%
import matplotlib.pyplot as plt
from myst_nb import glue

from ddgd.config import resolve, shown_path
from ddgd.pages.figure2 import draw_pipeline
from ddgd.pages.figures import save_figure

config = resolve(preset)
fig = draw_pipeline(config=config)
paths = save_figure(fig, output_dir, "figure2")
glue("fig2-figure", fig, display=False)
plt.close(fig)  # shown once, through the glued figure below
print("written:", ", ".join(shown_path(p) for p in paths))

# %% [markdown]
# ```{glue:figure} fig2-figure
# :name: fig-figure2
#
# The distillation process of DDGD, drawn from the configuration of the preset in the parameters
# cell (ImageWoof at paper scale by default). Top: one fine-tuning step. The predicted clean latent
# is compared with the real memory (representativeness) and the generated memory (diversity);
# after the loss, the step's latents are stored and both memories take the self-adaptive update.
# Bottom: sampling and evaluation after fine-tuning. Dashed arrows write into a memory and carry
# no gradient.
# ```
#
# Reading {numref}`fig-figure2` from the top left:
#
# - **Latents.** A random mini-batch of real images $x$ is encoded by the VAE into
#   $z_0 = s\,E(x)$ and noised to $z_t$ by the forward process {eq}`eq-forward`.
# - **Diffusion loss.** The class-conditional DiT predicts the noise $\epsilon_\theta(z_t, t, c)$;
#   only the DiffFit parameters (biases, the class embedding and the scale factors $\gamma$) are
#   trained. Its error is the diffusion loss {eq}`eq-diffusion`, to which the variational-bound
#   term of the variance head is added when `finetune.use_vb` is on.
# - **Predicted clean latent.** Solving the forward process for $z_0$ with the predicted noise gives
#   $\hat z_0$ {eq}`eq-x0`; the memory terms compare it, with the cosine similarity
#   {eq}`eq-similarity`, to the memories of its class.
# - **Two memories, two terms.** The real memory $\mathcal{M}_R^c$ holds up to $N_R$ real latents;
#   the representativeness term {eq}`eq-real` raises the smallest similarity of the batch's
#   predictions to it. The generated memory $\mathcal{M}_G^c$ holds up to $N_G$ earlier predictions;
#   the diversity term {eq}`eq-gen` lowers the largest similarity to it.
# - **Total loss.** The three terms are combined with the weights $\lambda_r$ and $\lambda_g$
#   {eq}`eq-total`.
# - **Self-adaptive update.** After the loss, the step's latents enter the memories. A memory that
#   holds more than its size drops the item with the largest similarity sum $s_i = \sum_j S_{ij}$,
#   the most redundant one {eq}`eq-adaptive`, until it fits; Minimax drops the oldest item instead.
# - **Sampling and evaluation.** The EMA weights of the fine-tuned model generate the image pool
#   with a guided sampler; the first IPC images of each class are the distilled set, on which a
#   network is trained from scratch and tested on real images.
#
# One difference from the paper's caption is drawn on purpose: the caption says the memory is
# updated *after each epoch*, while the released code, and this package, update both memories
# after *every step* (see the [deviations](../book/deviations.md) page). The diagram shows the
# per-step update.
