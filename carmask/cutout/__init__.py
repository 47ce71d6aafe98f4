"""Dealer-ready cutouts: the car on transparency or a colour, its glass see-through, a contact shadow, framed.

`render(image, mask, options, glass)` makes the file; each step is its own module, applied in this order:
  alpha.py          the car's alpha, its windows made see-through or tinted (the model's glass output)
  decontaminate.py  edge pixels take the colour of the car just inside them, not the old background's
  frame.py          crop to the car's box with a margin (the canvas may grow past the photo)
  shadow.py         a soft contact shadow under the car, from the mask's footprint
  encode.py         onto a background colour, then PNG, WebP or JPEG
With no option set, the cutout is today's: the photo with the mask as its alpha, as a PNG.
"""

from carmask.cutout.options import CutoutOptions, OptionError, Output, Shadow, Windows
from carmask.cutout.render import render

__all__ = ["CutoutOptions", "OptionError", "Output", "Shadow", "Windows", "render"]
