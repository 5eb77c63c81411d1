.PHONY: setup demo test bench
setup: ; bash scripts/setup.sh
demo: ; bash scripts/demo.sh
test: ; bash scripts/test.sh
bench: setup ; for b in bench/*.py; do .venv/bin/python $$b; done
