"""Stage 6, the book: the chapter kit, glue and tables, prose checks, citations, the course page, Colab, the
exercise checkers, the papermill runner, the static build and the command line."""
