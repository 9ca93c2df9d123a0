# GPU image: vLLM generation and judging, JAX head on the GPU.
#   docker build -t aeuf .
#   docker run --gpus all -v $PWD/runs:/app/runs aeuf dataset/prompts.csv --num_responses 8 --num_annotations 2
FROM nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04

ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-pip python3-venv git \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY aeuf ./aeuf
COPY dataset ./dataset
# vllm brings its own CUDA build of torch; jax[cuda12] puts the head on the GPU.
RUN pip3 install ".[gpu]" "jax[cuda12]"

ENTRYPOINT ["aeuf"]
