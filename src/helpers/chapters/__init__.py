"""Stage 7, chapters: one module per chapter with the tables and sentences its page glues, kept apart from the
algorithms they report on."""
