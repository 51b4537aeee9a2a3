FROM python:3.11-slim
WORKDIR /opt/governor
COPY requirements.lock pyproject.toml README.md topics.yaml ./
COPY app ./app
COPY agents ./agents
COPY schemas ./schemas
COPY config ./config
RUN pip install --no-cache-dir -r requirements.lock && pip install --no-cache-dir --no-deps .
USER nobody
ENV GOVERNOR_WORKER__DATA_DIR=/tmp/governor
ENTRYPOINT ["governor"]
CMD ["worker"]
