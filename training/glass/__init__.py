"""The glass head: a small second output on a frozen car network that marks the car's windows.

labels.py reads glass labels (DSMLR's front and back glass, user-photos' window class), head.py builds the
head on the trunk's decoder features, train.py fits it on cached features with k-fold validation, export.py
writes the trunk and head as one ONNX graph with two outputs beside the shipped model's manifest.
"""
