"""Figure 2 (the pipeline diagram): labels come from the config, and no text collides."""
from dataclasses import replace
from itertools import combinations

import matplotlib

matplotlib.use("Agg")  # headless: the tests render with the Agg canvas

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

from ddgd.config import PRESETS  # noqa: E402
from ddgd.pages.figure2 import draw_pipeline  # noqa: E402
from ddgd.pages.figures import save_figure

WOOF = PRESETS["imagewoof"]


def _with(cfg, **finetune):
    return replace(cfg, finetune=replace(cfg.finetune, **finetune))


@pytest.fixture
def drawn():
    """Draw a config, render it, and close every figure afterwards."""
    figures = []

    def draw(cfg=None):
        fig = draw_pipeline(config=cfg)
        fig.canvas.draw()  # text bbox patches get their size at draw time
        figures.append(fig)
        return fig

    yield draw
    for fig in figures:
        plt.close(fig)


def _texts(fig):
    return [t for t in fig.axes[0].texts if t.get_text().strip()]


def _joined(fig):
    return "\n".join(t.get_text() for t in _texts(fig))


def _extent(text, renderer):
    """The rendered box of a text, its white background included when it has one."""
    patch = text.get_bbox_patch()
    return (patch or text).get_window_extent(renderer)


def _overlaps(a, b, tol=1.0):
    """Whether two display boxes share more than `tol` pixels in both directions."""
    return (min(a.x1, b.x1) - max(a.x0, b.x0) > tol) and (min(a.y1, b.y1) - max(a.y0, b.y0) > tol)


def test_lambdas_and_memory_sizes_come_from_the_config(drawn):
    text = _joined(drawn())
    assert "\\lambda_r=0.002" in text and "\\lambda_g=0.008" in text
    assert "N_R=64" in text and "N_G=64" in text
    changed = _joined(drawn(_with(WOOF, lambda_r=0.05, lambda_g=0.125, n_real=16, n_gen=32)))
    assert "\\lambda_r=0.05" in changed and "\\lambda_g=0.125" in changed
    assert "0.002" not in changed and "0.008" not in changed
    assert "N_R=16" in changed and "N_G=32" in changed


def test_memory_rule_comes_from_the_config(drawn):
    default = _joined(drawn())
    assert "arg\\,max" in default and "FIFO" not in default
    fifo = _joined(drawn(_with(WOOF, method="minimax")))
    assert "FIFO" in fifo and "arg\\,max" not in fifo
    assert "arg\\,min" in _joined(drawn(_with(WOOF, memory_rule="adaptive-min")))
    assert "memory terms off" in _joined(drawn(_with(WOOF, method="finetune")))


def test_sampling_and_evaluation_labels_follow_the_config(drawn):
    cfg = replace(WOOF, sample=replace(WOOF.sample, steps=25, pool=70),
                  eval=replace(WOOF.eval, ipcs=(1, 70), networks=("convnet-3",)))
    text = _joined(drawn(cfg))
    assert "25 steps" in text and "70 images per class" in text and "first 1 / 70" in text
    assert "ConvNet-3" in text and "ResNet-18" not in text


CONFIGS = {
    "imagewoof": WOOF,
    "minimax": _with(WOOF, method="minimax"),
    "finetune-cumulative": _with(WOOF, method="finetune", accumulate="cumulative", use_vb=False),
    "adaptive-min": _with(WOOF, memory_rule="adaptive-min", difffit=False),
    "fashion-mnist": PRESETS["fashion-mnist"],
    "digits-tiny": PRESETS["digits-tiny"],
    "long-lists": replace(WOOF, eval=replace(WOOF.eval, ipcs=(1, 10, 20, 50, 70, 100),
                                             networks=("convnet-6", "resnetap-10", "resnet-18", "convnet-3"))),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_no_text_overlaps_and_labels_stay_in_their_boxes(drawn, name):
    fig = drawn(CONFIGS[name])
    renderer = fig.canvas.get_renderer()
    texts = _texts(fig)
    extents = [_extent(t, renderer) for t in texts]
    for (i, a), (j, b) in combinations(enumerate(extents), 2):
        assert not _overlaps(a, b), f"{texts[i].get_text()!r} overlaps {texts[j].get_text()!r}"
    boxes = [p for p in fig.axes[0].patches if isinstance(p, FancyBboxPatch)]
    labels = [t for t in texts if t.get_gid() == "label"]
    assert len(boxes) == len(labels) >= 15
    box_extents = [p.get_window_extent(renderer) for p in boxes]
    for label, box in zip(labels, box_extents):
        inner = label.get_window_extent(renderer)
        assert box.x0 <= inner.x0 and inner.x1 <= box.x1 and box.y0 <= inner.y0 and inner.y1 <= box.y1, \
            f"label {label.get_text()!r} spills out of its box"
    for a, b in combinations(box_extents, 2):
        assert not _overlaps(a, b), "two boxes of the diagram overlap"
    figure_box = fig.bbox
    for text, extent in zip(texts, extents):
        if text.get_gid() == "arrow-label":
            assert not any(_overlaps(extent, box) for box in box_extents), f"{text.get_text()!r} sits on a box"
        assert figure_box.x0 <= extent.x0 and extent.x1 <= figure_box.x1, f"{text.get_text()!r} is cut off"
        assert figure_box.y0 <= extent.y0 and extent.y1 <= figure_box.y1, f"{text.get_text()!r} is cut off"


def test_draws_into_a_given_axes_and_refuses_a_non_config():
    fig, ax = plt.subplots(figsize=(12, 5.5))
    try:
        assert draw_pipeline(ax=ax) is fig
        assert len(ax.texts) > 15
        with pytest.raises(TypeError, match="resolve"):
            draw_pipeline(config="imagewoof")
    finally:
        plt.close(fig)


def test_save_figure_writes_png_and_pdf_without_leftovers(drawn, tmp_path):
    paths = save_figure(drawn(), tmp_path / "out", "figure2", dpi=40)
    assert [p.name for p in paths] == ["figure2.png", "figure2.pdf"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths[1].read_bytes()[:5] == b"%PDF-"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["figure2.pdf", "figure2.png"]
