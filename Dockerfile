# The xero-crm-sync image: Airflow's official image extended with this project's pinned requirements, the way
# Airflow's docs recommend for anything beyond a quick test (never _PIP_ADDITIONAL_REQUIREMENTS, which installs
# on every container start and can resolve to different versions on different workers).
#
#   docker compose build            # or: docker build -t xero-crm-sync .
#
# The image is self-contained (dags, plugins, include and sql are copied in); docker-compose.yaml also mounts
# them so that edits show up without a rebuild during development.
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}

# requirements.txt pins every package (apache-airflow itself included, to the image's version), so every
# scheduler, worker and api-server runs exactly the versions the test suite ran.
COPY --chown=airflow:0 requirements.txt /opt/airflow/requirements.txt
RUN pip install --no-cache-dir -r /opt/airflow/requirements.txt

# The project: plain Python packages in include/ (no airflow imports), the Airflow adapters in plugins/, the DAGs,
# and the SQL the transforms and migrations run. settings.PROJECT_ROOT is the folder holding include/ and sql/.
COPY --chown=airflow:0 include /opt/airflow/include
COPY --chown=airflow:0 sql /opt/airflow/sql
COPY --chown=airflow:0 plugins /opt/airflow/plugins
COPY --chown=airflow:0 dags /opt/airflow/dags
ENV PYTHONPATH=/opt/airflow/include:/opt/airflow/plugins \
    XERO_CRM_VAR_DIR=/opt/airflow/var
