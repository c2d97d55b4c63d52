# The two commands of the README; each one sets everything up first (scripts/setup.sh, quick
# when already done): the virtual environment .venv, the Jupyter kernel and Fashion-MNIST.
#
#   make book    build the executed book into _build/html (warnings are errors)
#   make test    run the test suite
#
# Also: make setup (set-up only), make ipynb (.ipynb copies of the notebooks, for Colab),
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

# Colab opens .ipynb files only: every book build writes copies into _build/html/_colab/ (the Colab
# buttons open them on the published branch gh-pages); this writes the same copies into
# _build/ipynb/, for uploading one to Colab by hand.
ipynb: setup
	$(BIN)/python -m ddgd.pages.colab

clean:
	rm -rf _build
