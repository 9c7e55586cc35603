"""The instructor's server: one JupyterHub for a class or a reading group.

`settings` holds the names every part of the deployment shares (course id,
hub groups, exchange and room folders), so that the hub's config
(`hub/jupyterhub_config.py`), nbgrader's, Kubernetes' values
(`hub/kubernetes/values.yaml`) and the tests cannot drift apart.
"""
