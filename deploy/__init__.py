"""Build and containerize the bento: make bento / make image (see bento.py, image.py)."""
