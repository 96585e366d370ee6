"""Gradio Space entry point: click on an image (positive or negative) and the mask follows.

    python spaces/app.py [--model FOLDER] [--device cuda] [--dtype bfloat16] [--host 127.0.0.1] [--port 7860]

The app is the package module `hf_iis.space` (uploads, per-visitor session, rendering, handlers, UI); this file
only starts it, as a Hugging Face Space does (`app_file: app.py`, with `requirements.txt` installing hf-iis[space]).
Without `--model` (or HF_IIS_MODEL) it serves the embedded default checkpoint.
"""

from hf_iis.space import main

if __name__ == "__main__":
    main()
