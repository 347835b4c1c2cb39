"""The Segment Anything tools of the annotator: the Segment tool (clicks → mask → polygon),
Track with SAM 2, and LIT-LoRA (learning from corrections). Thin: the model work is
src/training/sam/, run in one background worker thread."""
