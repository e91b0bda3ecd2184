# A magsag worker: git, the magsag package with its pinned dependencies (which bring the
# `temporal` CLI), and optionally the agent CLIs. docker-compose.yml builds it; on any
# other machine:
#   docker build -t magsag-worker [--build-arg INSTALL_AGENTS=true] .
#   docker run -d -e TEMPORAL_ADDRESS=HOST:7233 -v magsag-state:/var/lib/magsag magsag-worker
FROM python:3.11.14-slim-trixie

# true: also install Node.js (Debian's) and the agent CLIs below from npm. AGENT_CLIS
# may pin versions, e.g. "@anthropic-ai/claude-code@2.0.14".
ARG INSTALL_AGENTS=false
ARG AGENT_CLIS="@anthropic-ai/claude-code @openai/codex @google/gemini-cli"

RUN apt-get update \
    && apt-get install -y --no-install-recommends git openssh-client ca-certificates \
    && if [ "$INSTALL_AGENTS" = "true" ]; then \
        apt-get install -y --no-install-recommends nodejs npm \
        && npm install --global $AGENT_CLIS \
        && npm cache clean --force; \
    fi \
    && rm -rf /var/lib/apt/lists/*

# The dependencies first, exactly as pinned in pyproject.toml, so that a change to
# magsag's code rebuilds only the layers below.
COPY pyproject.toml /tmp/magsag/
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('/tmp/magsag/pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install --no-cache-dir --disable-pip-version-check -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt
COPY . /tmp/magsag/
RUN pip install --no-cache-dir --disable-pip-version-check --no-deps /tmp/magsag \
    && rm -rf /tmp/magsag

# Commits made by agents need an identity; magsag's own checkpoints fall back to one
# anyway. GIT_AUTHOR_NAME / GIT_COMMITTER_NAME (and _EMAIL) in the environment win.
RUN git config --system user.name "magsag worker" \
    && git config --system user.email "magsag-worker@localhost"

RUN useradd --create-home --uid 1000 magsag \
    && mkdir -p /var/lib/magsag \
    && chown magsag:magsag /var/lib/magsag
USER magsag
WORKDIR /home/magsag
ENV MAGSAG_STATE_DIR=/var/lib/magsag \
    PYTHONUNBUFFERED=1
VOLUME /var/lib/magsag

CMD ["magsag", "worker"]
