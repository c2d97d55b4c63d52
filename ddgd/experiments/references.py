"""Published numbers that the book's tables stand beside our own (book page: Table 1).

Top-1 accuracy in %, means of the published runs, hard labels. Each row names its `source`, and
`NOTES` says per dataset what the numbers are (which methods, which protocol and resolution), so a
page never shows a published number without saying where it comes from. `ddgd.experiments.report` shapes them
into tables (`reference_table`, `references_markdown`).
"""
from __future__ import annotations

import pandas as pd

MINIMAX = "Minimax (Gu et al., CVPR 2024), hard labels"
MINIMAX_QUOTED = "Minimax (Gu et al., CVPR 2024) as quoted by later papers, hard labels"
KIP = "KIP (Nguyen et al., ICLR 2021), comparison table"


def _references() -> list[dict]:
    rows: list[dict] = []

    def add(source, dataset, method, network, ipc, top1):
        rows.append(dict(source=source, dataset=dataset, method=method, network=network, ipc=ipc, top1=top1))

    # ImageWoof (Random / DiT / Minimax per IPC and network); Full is one value per network.
    woof = {10: ((24.3, 34.2, 37.0), (29.4, 34.7, 39.2), (27.7, 34.7, 37.6)),
            20: ((29.1, 36.1, 37.6), (32.7, 41.1, 45.8), (29.7, 40.5, 42.5)),
            50: ((41.3, 46.5, 53.9), (47.2, 49.3, 56.3), (47.9, 50.1, 57.1)),
            70: ((46.3, 50.1, 55.7), (50.8, 54.3, 58.3), (52.1, 51.5, 58.8)),
            100: ((52.2, 53.4, 61.1), (59.4, 58.3, 64.5), (61.5, 58.9, 65.7))}
    nets = ("convnet-6", "resnetap-10", "resnet-18")
    for ipc, cells in woof.items():
        for net, values in zip(nets, cells):
            for method, v in zip(("random", "dit", "minimax"), values):
                add(MINIMAX, "imagewoof", method, net, ipc, v)
    for net, v in zip(nets, (86.4, 87.5, 89.3)):
        add(MINIMAX, "imagewoof", "full", net, None, v)
    # ImageNette and ImageIDC, ResNetAP-10, IPC 10 / 20 / 50.
    quoted = {"imagenette": {"random": (54.2, 63.5, 76.1), "dit": (59.1, 64.8, 73.3), "minimax": (62.0, 66.8, 76.6),
                             "full": 93.3},
              "imageidc": {"random": (48.1, 52.5, 68.1), "dit": (54.1, 58.9, 64.3), "minimax": (53.1, 59.0, 69.6),
                           "full": 92.1}}
    for dataset, methods in quoted.items():
        for method, values in methods.items():
            if method == "full":
                add(MINIMAX_QUOTED, dataset, method, "resnetap-10", None, values)
                continue
            for ipc, v in zip((10, 20, 50), values):
                add(MINIMAX_QUOTED, dataset, method, "resnetap-10", ipc, v)
    # Fashion-MNIST, ConvNet-3 at 28 px, IPC 1 / 10 / 50.
    for method, values in (("dc", (70.5, 82.3, 83.6)), ("dsa", (70.6, 84.6, 88.7)), ("kip", (73.8, 86.8, 87.8))):
        for ipc, v in zip((1, 10, 50), values):
            add(KIP, "fashion-mnist", method, "convnet-3", ipc, v)
    return rows


# Tidy rows: source, dataset, method, network, ipc (None for the full training set), top1.
REFERENCES: pd.DataFrame = pd.DataFrame(_references()).astype({"ipc": "Int64"})


# What the published numbers of each dataset are, shown above their table in the book.
NOTES: dict[str, str] = {
    "imagewoof": "ImageWoof at paper scale (DiT-XL/2 at 256 px, evaluation at 224 px), hard labels; "
                 "the full-data accuracy (Full) does not depend on the IPC and is repeated in every IPC column.",
    "imagenette": "ImageNette at paper scale, ResNetAP-10, hard labels, as quoted by later papers; "
                  "Full is the accuracy on all training images, repeated in every IPC column.",
    "imageidc": "ImageIDC at paper scale, ResNetAP-10, hard labels, as quoted by later papers; "
                "Full is the accuracy on all training images, repeated in every IPC column.",
    "fashion-mnist": "Other distillation methods (DC, DSA, KIP) on Fashion-MNIST at 28 px with ConvNet-3, each under "
                     "its own training protocol: a yardstick for the order of magnitude, not a cell-by-cell comparison.",
}
