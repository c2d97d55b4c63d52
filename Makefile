# The two commands of the README; each one sets everything up first (scripts/setup.sh, quick
# when already done): the virtual environment .venv, the Jupyter kernel and Fashion-MNIST.
#
#   make book    build the executed book into _build/html (warnings are errors)
#   make test    run the test suite
#
# Also: make setup (set-up only), make ipynb (the .ipynb copies of the notebooks that Binder and Colab open),
# make clean (remove the built book).

VENV ?= .venv
BIN := $(VENV)/bin
export VENV

.PHONY: all setup book test ipynb clean

all: test book

setup:
	./scripts/setup.sh

# --all: every page, notebooks included, is re-read and re-executed, so the book always shows what
# the current code computes.
book: setup
	$(BIN)/jupyter-book build . --all -W -n --keep-going

test: setup
	$(BIN)/pytest

# Colab opens .ipynb files only: the committed copies (ddgd/launch.py: the .py plus a Colab setup
# cell) are what the Binder and Colab buttons open; the book itself reads the .py files and
# _config.yml excludes the copies. Run after editing a notebook (a test checks they match).
ipynb: setup
	$(BIN)/python -m ddgd.launch

clean:
	rm -rf _build
