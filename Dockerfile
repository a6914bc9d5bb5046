# The xero-crm-sync production image: Airflow's official image extended with this project's pinned RUNTIME
# requirements, the way Airflow's docs recommend for anything beyond a quick test (never
# _PIP_ADDITIONAL_REQUIREMENTS, which installs on every container start and can resolve to different versions on
# different workers).
#
#   docker build -t xero-crm-sync .                                  # production: the last stage, `runtime`
#   docker build --target sandbox -t xero-crm-sync-sandbox .         # the local Xero sandbox (development only)
#
# The runtime image has requirements.txt and the project's provider only (no pytest, playwright, hypothesis, ruff,
# py-spy: those are in requirements-dev.txt) and no sandbox (include/xero_sandbox is never copied into it). It is
# self-contained (dags, plugins, providers/xero, include/xero_crm_sync and sql are copied in); docker-compose.yaml
# also mounts them for development.
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION} AS base

# requirements.txt pins every runtime package (apache-airflow itself included, to the image's version), so every
# scheduler, worker and api-server runs exactly the versions the test suite ran.
COPY --chown=airflow:0 requirements.txt /opt/airflow/requirements.txt
RUN pip install --no-cache-dir -r /opt/airflow/requirements.txt
# settings.PROJECT_ROOT is the folder holding include/ and sql/: include/ is imported from PYTHONPATH.
ENV PYTHONPATH=/opt/airflow/include:/opt/airflow/plugins \
    XERO_CRM_VAR_DIR=/opt/airflow/var

# The local Xero sandbox for docker-compose's development stack, with the development requirements it needs.
# Never deployed: `docker build` without --target builds the runtime stage below, which does not derive from this.
FROM base AS sandbox
COPY --chown=airflow:0 requirements-dev.txt /opt/airflow/requirements-dev.txt
RUN pip install --no-cache-dir -r /opt/airflow/requirements.txt -r /opt/airflow/requirements-dev.txt
COPY --chown=airflow:0 include/xero_sandbox /opt/airflow/include/xero_sandbox

# Production (the default target): the integration's own package, its Airflow provider (the `xero` connection type
# and XeroHook, found by Airflow through its entry point, so it is pip-installed; its dependencies are already
# pinned above), its Airflow adapters, the DAGs and the SQL the transforms and migrations run.
FROM base AS runtime
COPY --chown=airflow:0 providers/xero /opt/airflow/providers/xero
RUN pip install --no-cache-dir --no-deps /opt/airflow/providers/xero
COPY --chown=airflow:0 include/xero_crm_sync /opt/airflow/include/xero_crm_sync
COPY --chown=airflow:0 sql /opt/airflow/sql
COPY --chown=airflow:0 plugins /opt/airflow/plugins
COPY --chown=airflow:0 dags /opt/airflow/dags
