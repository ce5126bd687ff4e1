# FER Studio as a public demo on Hugging Face Spaces (Docker SDK) or any Docker host.
# The same install and start commands as `make deploy-check` (tests/harness/deploy_check.py):
# a virtual environment, `pip install -r requirements.txt`, `streamlit run app.py`.
# Not built on the project's machines (no Docker engine there); `make deploy-check` runs those commands.
FROM python:3.11-slim

# Spaces runs the container as the user with uid 1000.
RUN useradd --create-home --uid 1000 user
USER user
ENV HOME=/home/user \
    VIRTUAL_ENV=/home/user/venv \
    PATH=/home/user/venv/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    STREAMLIT_SERVER_HEADLESS=true \
    FER_STUDIO_PUBLIC=1 \
    FER_STUDIO_TRAINING=off
WORKDIR /home/user/app

RUN python -m venv /home/user/venv
# PyPI's Linux torch is the CUDA build (gigabytes of libraries); a CPU host wants the CPU wheels.
# Installed first, they satisfy requirements.txt's torch==2.14.1 and torchvision==0.29.1 pins.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.14.1 torchvision==0.29.1
COPY --chown=user requirements.txt .
RUN pip install -r requirements.txt && pip check
COPY --chown=user . .

# 7860 is the port Spaces routes to (app_port in the Space's README front matter).
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:7860/_stcore/health', timeout=4).read().strip() != b'ok')"]
CMD ["streamlit", "run", "app.py", "--server.port", "7860", "--server.address", "0.0.0.0"]
