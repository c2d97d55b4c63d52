"""Colab for the notebook pages: `.ipynb` copies written into the built site, and a launch-menu entry for each.

The notebooks are jupytext `.py` files; Colab opens only `.ipynb` from GitHub, so the theme's own
Colab button (which opens the page's source file) cannot work. After an HTML build this extension
writes a copy of every notebook into `<site>/<colab_folder>/<name>.ipynb` (`ddgd.pages.colab`), and
adds to the launch menu of each notebook page a Colab link to that copy on the branch the built
site is published to (`colab_branch`, `gh-pages`), with the repository address of the book's
configuration. Until the site is published there, the link leads nowhere.
"""
from pathlib import Path

COLAB = "https://colab.research.google.com"


def _notebooks() -> set[str]:
    from ddgd.experiments.reproduce import ARTEFACTS

    return {str(Path(path).with_suffix("")) for path in ARTEFACTS.values()}


def add_colab_link(app, pagename, templatename, context, doctree):
    repo_url = app.config.html_theme_options.get("repository_url", "")
    if "github.com/" not in repo_url or pagename not in _notebooks():
        return
    org, repo = repo_url.split("github.com/")[-1].strip("/").split("/")[:2]
    copy = f"{app.config.colab_folder}/{Path(pagename).name}.ipynb"
    for group in context.get("header_buttons", []):
        if group.get("label") == "launch-buttons":
            group["buttons"].append({"type": "link", "text": "Colab", "tooltip": "Launch on Colab",
                                     "icon": "_static/images/logo_colab.png",
                                     "url": f"{COLAB}/github/{org}/{repo}/blob/{app.config.colab_branch}/{copy}"})


def write_copies(app, exception):
    if exception is None and app.builder.format == "html":
        from ddgd.pages.colab import write_ipynb_copies

        write_ipynb_copies(Path(app.outdir) / app.config.colab_folder)


def setup(app):
    app.add_config_value("colab_folder", "_colab", "html")
    app.add_config_value("colab_branch", "gh-pages", "html")
    app.connect("html-page-context", add_colab_link, priority=510)  # after the theme's launch menu (501)
    app.connect("build-finished", write_copies)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
