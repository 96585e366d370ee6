"""The distilled student: one image pass gives per-pixel features; a click's map is a dot product with the clicked
pixel's feature, so extra clicks and exact feature-space triangulation cost no image pass."""
