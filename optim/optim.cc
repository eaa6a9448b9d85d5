// optim/: AdamW, schedules, clipping.
