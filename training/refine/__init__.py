"""The full-resolution edge refiner: a small network that redraws the car's outline at the photo's own size.

coarse.py caches the shipped model's probabilities for each training photo (what the refiner will be given),
tiles.py cuts training tiles along the coarse outline at full resolution, nets.py builds the candidate
networks, train.py fits one, export.py writes it as the second ONNX graph beside a car model's manifest.
"""
