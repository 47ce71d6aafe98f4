"""The cloud task: multi-band Landsat-8 patches to clear / thin cloud / thick cloud / shadow, and cloud cover.

Same package as the car task (the classic U-Net, the export, the manifest), its own modules: bands,
data (reader and labels), augment, losses in training/losses.py, train, evaluate, export, cli.
"""
