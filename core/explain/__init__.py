"""Why a model decided: Grad-CAM saliency through the grad-cam package (saliency), the seed
paper's k-means regions of an attention map (clusters) and one face's regions removed one at a
time (regions).

May import core.models and every wing below it.
"""
