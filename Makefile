# cardiogate: the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint unit bench bench-all venv viewer lock chart-alerts clean train train-calcium train-stenosis train-stenosis-vessels train-family-b calibrate-ood evaluate ablation-family-b soak fuzz

venv: $(STAMP)

$(STAMP): pyproject.toml deploy/constraints.txt tests/plugins/ctqc/pyproject.toml service/phantoms/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-deps -e service/phantoms  # first: not on PyPI
	$(BIN)/python -m pip install --quiet -c deploy/constraints.txt -e ".[dev]"
	$(BIN)/python -m pip install --quiet --no-deps -e tests/plugins/ctqc  # a task plug-in the tests use
	touch $(STAMP)

## The OHIF Viewer that tests/integration/test_viewer_ohif.py serves (npm's @ohif/app, pinned).
VIEWER_STAMP := tests/viewer/node_modules/.installed
viewer: $(VIEWER_STAMP)

$(VIEWER_STAMP): tests/viewer/install.sh
	tests/viewer/install.sh

## Start the service on the embedded defaults (DICOM :11112 AE CARDIOGATE, HTTP :8080, ./data).
run: $(STAMP)
	$(BIN)/cardiogate serve

lint: $(STAMP)
	$(BIN)/ruff check service tests bench models/training deploy docs
	$(BIN)/ruff format --check service tests bench models/training deploy docs
	$(BIN)/mypy --strict service/cardiogate deploy/lock.py deploy/healthcheck.py
	$(BIN)/mypy --strict tests/plugins/ctqc/cardiogate_ctqc  # the task plug-in, as a hospital would check it
	$(BIN)/mypy --strict service/phantoms/cardiogate_phantoms
	MYPYPATH=service:service/phantoms:docs $(BIN)/mypy --strict docs/*.py
	$(BIN)/bandit -q -r service

## Lint, type-check, then the whole test suite.
test: lint viewer
	$(BIN)/python -m pip install --quiet -e ".[train]"  # the learning loop's test fine-tunes a model
	$(BIN)/python -m pytest -q --durations=15

## Re-pin the runtime dependencies (deploy/constraints.txt, used by venv and the images)
## at the versions installed in .venv.
lock: $(STAMP)
	$(BIN)/python deploy/lock.py > deploy/constraints.txt.new
	mv deploy/constraints.txt.new deploy/constraints.txt

## Copy the alert rules into the Helm chart (Helm reads only files inside the chart).
chart-alerts:
	cp deploy/prometheus/alerts.yml helm/cardiogate/files/alerts.yml

## Long reliability runs, not part of `make test`: 8 associations for SOAK_SECONDS (600) and
## FAULT_ROUNDS (100) rounds of kill -9; the load figures go to bench/results/.
soak: $(STAMP)
	SOAK_SECONDS=$${SOAK_SECONDS:-600} FAULT_ROUNDS=$${FAULT_ROUNDS:-100} \
		$(BIN)/python -m pytest -q -s tests/reliability/test_load.py tests/reliability/test_kill_loop.py

## Coverage-guided fuzzing (atheris) of C-STORE ingest and the loaders, FUZZ_SECONDS each;
## the corpora grow under .fuzz/ between runs. Not part of `make test`.
FUZZ_SECONDS ?= 60
fuzz: $(STAMP)
	mkdir -p .fuzz
	for target in ingest loaders; do \
		PYTHONPATH=service:tests $(BIN)/python tests/fuzz/harness.py $$target \
			.fuzz/corpus-$$target -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=3000 \
			-artifact_prefix=.fuzz/crash-$$target- >.fuzz/$$target.log 2>&1; \
		status=$$?; grep -E "^(Done|==[0-9]+== ERROR)" .fuzz/$$target.log; \
		test $$status -eq 0 || { tail -40 .fuzz/$$target.log; exit 1; }; \
	done

bench: $(STAMP)
	$(BIN)/python bench/ingest.py

## The performance record: ingest (1, 4, 8 associations vs storescp), inference, end-to-end
## turnaround and throughput through a real Orthanc, bounded to ~10 minutes on 2 quiet cores.
## JSON in bench/results/; `make bench-all RECORD=--record` also copies ingest, turnaround
## and throughput to bench/records/. Check `uptime` first: the figures mean little under load.
BENCH_OUT ?= bench/results
RECORD    ?=
bench-all: $(STAMP)
	mkdir -p $(BENCH_OUT)
	$(BIN)/python bench/ingest.py --reps 3 --slices 500 --data $(BENCH_OUT)/data/ingest \
		--json $(BENCH_OUT)/ingest.json $(RECORD)
	$(BIN)/python bench/inference.py --runs 2 --json $(BENCH_OUT)/inference.json
	$(BIN)/python bench/turnaround.py --runs 5 --data $(BENCH_OUT)/data/series \
		--json $(BENCH_OUT)/turnaround.json $(RECORD)
	$(BIN)/python bench/throughput.py --studies 12 --associations 3 \
		--data $(BENCH_OUT)/data/series --json $(BENCH_OUT)/throughput.json $(RECORD)

## Everything the shipped models and their cards come from, on the CPU from a clean checkout:
## the shipped models, the models trained on one family for the other direction, the
## out-of-distribution profiles, then the cross-family evaluation written into the cards
## and docs. Times on the 2-core VM are in docs/models.md ("Training from a clean checkout").
train: train-calcium train-stenosis train-stenosis-vessels train-family-b calibrate-ood evaluate

TRAIN_ENV := PYTHONPATH=models/training:service
# The version the shipped models' cards get: it is part of every output UID, so new weights
# need a new one.
MODEL_VERSION := 0.3.0
EVALUATED := models/evaluation/models

## Train the calcium model on synthetic phantoms (CPU PyTorch), export ONNX, write its card.
train-calcium: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[train]"
	$(TRAIN_ENV) $(BIN)/python models/training/train_calcium.py --out models/calcium \
		--family a --no-aortic-valve --version $(MODEL_VERSION)

## Fine-tune the serving calcium model on a review export (DATASET=`cardiogate review export
## OUT --dataset DIR` folder) into a candidate for shadow mode (CANDIDATE), with held-out metrics.
.PHONY: finetune
DATASET ?= data/review-dataset
CANDIDATE ?= models/candidates/calcium
finetune: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[train]"
	$(TRAIN_ENV) $(BIN)/python models/training/finetune_from_reviews.py --model models/calcium \
		--dataset $(DATASET) --out $(CANDIDATE) --heldout a:10,b:10

## Train the stenosis model (curriculum and level-3-only arms), export ONNX, write its card.
train-stenosis: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[train]"
	$(BIN)/python models/training/train_stenosis.py --out models/stenosis --version $(MODEL_VERSION)

## Add the vessel head (vessel + position outputs) to the shipped stenosis model, frozen net kept.
train-stenosis-vessels: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[train]"
	$(BIN)/python models/training/train_stenosis_vessels.py --model models/stenosis \
		--version $(MODEL_VERSION)

## The other direction of the cross-family evaluation: each model trained on family B only
## (same scripts), kept under models/evaluation/models/ (not loaded by the service).
train-family-b: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[train]"
	$(TRAIN_ENV) $(BIN)/python models/training/train_calcium.py --family b --version 0.3.0-b \
		--steps 1500 --train-scans 80 --val-scans 20 --test-scans 20 --out $(EVALUATED)/calcium-b
	$(TRAIN_ENV) $(BIN)/python models/training/train_stenosis.py --family b --arms level3 \
		--images 1000 --steps 600 --workers 1 --test-cines 40 --version 0.3.0-b \
		--out $(EVALUATED)/stenosis-b

## The curriculum ablation on the harder benchmark (family B): the curriculum arm with
## train-family-b's budget (levels 1 and 2 of family A, then family-B frames), evaluated on
## the family-B held-out cines as the level-3-only family-B model is. Not part of `make train`.
ablation-family-b: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[train]"
	$(TRAIN_ENV) $(BIN)/python models/training/train_stenosis.py --family b --arms curriculum \
		--images 1000 --steps 600 --workers 1 --test-cines 40 \
		--version $(MODEL_VERSION)-b-curriculum --out models/evaluation/ablation/stenosis-b-curriculum
	$(TRAIN_ENV) $(BIN)/python models/training/evaluate_cross_family.py --task stenosis \
		--model models/evaluation/ablation/stenosis-b-curriculum --family b \
		--out models/evaluation/ablation/stenosis_b_curriculum_on_b.json

## Fit each shipped card's out-of-distribution profile (family A inputs; flag rates on both).
calibrate-ood: $(STAMP)
	$(TRAIN_ENV) $(BIN)/python models/training/calibrate_ood.py calcium \
		--card models/calcium/card.json --fit 200 --held-out 200 --other 40
	$(TRAIN_ENV) $(BIN)/python models/training/calibrate_ood.py stenosis \
		--card models/stenosis/card.json --fit 200 --held-out 200 --other 40

## Every model on both families' held-out sets with bootstrap intervals (models/evaluation),
## then the tables into the cards, docs/models.md and the README.
evaluate: $(STAMP)
	for task in calcium stenosis; do \
		for family in a b; do \
			$(TRAIN_ENV) $(BIN)/python models/training/evaluate_cross_family.py --task $$task \
				--model models/$$task --family $$family \
				--out models/evaluation/$${task}_trained_a_on_$$family.json || exit 1; \
			$(TRAIN_ENV) $(BIN)/python models/training/evaluate_cross_family.py --task $$task \
				--model $(EVALUATED)/$$task-b --family $$family \
				--out models/evaluation/$${task}_trained_b_on_$$family.json || exit 1; \
		done; \
	done
	$(TRAIN_ENV) $(BIN)/python models/training/cross_family_report.py --cards models \
		--into docs/models.md --into README.md

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache tests/viewer/node_modules

## The documentation site (mkdocs.yml, docs/): regenerate the reference pages from the code,
## then a strict build into site/. `make docs EXAMPLES=--examples` also re-runs the executed
## examples under docs/examples (a real demo, analyze and API run, about 30 s).
EXAMPLES ?=
.PHONY: docs
docs: $(STAMP)
	$(BIN)/python docs/generate.py $(EXAMPLES)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -d site
