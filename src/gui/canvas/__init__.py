"""The annotator canvas: image, shapes, drawing and editing tools."""
