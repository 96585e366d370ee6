"""The signed-click segmenter (the teacher): f(I, x, s) → per-pixel P(y ∈ m | x ∈ m) (s = +1) or
P(y ∈ m | x ∉ m) (s = −1).

Where things happen: the image is encoded once in `embeddings.py` (backbone + saliency branch → cached embedding);
a click enters in `click_encoding.py` (disks and distance maps in the model-input frame) and is decoded by
`modeling_click_decoder.py`; `modeling_signed_click.py` ties them into a `PreTrainedModel`.
"""
