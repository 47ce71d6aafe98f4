"""The cloud task: multi-band satellite patches in, class maps and cloud cover out.

patches.py reads TIFF / .npy patches and picks their bands by name; segmenter.py runs a multi-class model
over them (`PatchSegmenter`, the photo path's `Segmenter` counterpart behind the same small interface);
cover.py turns a class map into each class's and group's share of the valid pixels; predict.py is
`carmask-predict` for patches. The photo path (carmask.inference, carmask.predict) imports none of it.
"""
