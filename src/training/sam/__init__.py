"""Click-to-segment and tracking with ultralytics' SAM family (SAM 2 tiny, MobileSAM), and
LIT-LoRA: a mask-decoder adapter learned from the user's corrections while tracking.

Qt-free. The image encoder runs once per frame (`embeddings.py` caches its output); every
click, tracking step and adapter update runs only the prompt encoder, memory and decoder.
"""
