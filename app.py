"""FER Studio's entry point: page config, the model pickers shared by every page, navigation.

Run with `streamlit run app.py` (or `make run`). Every page lives in pages/ and calls core/.
"""

import streamlit as st

from core.serving.memory import limit_heap_arenas
from core.serving.public import public_mode
from ui.deploy import guard_public_server, keep_uploads_in_memory, settings_from_secrets
from ui.pickers import model_pickers
from ui.resources import job_worker

st.set_page_config(page_title="FER Studio", page_icon=":material/mood:", layout="wide")
settings_from_secrets()  # FER_STUDIO_PUBLIC and the limits, as Community Cloud passes them
guard_public_server()  # public mode: no visitor clears the caches; upload sizes checked by the server
keep_uploads_in_memory()
limit_heap_arenas()  # at the first script run when a host starts `streamlit run app.py`; cheap after

PAGES = [
    st.Page("pages/analyze.py", title="Analyze", icon=":material/face:", default=True),
    st.Page("pages/video.py", title="Video", icon=":material/movie:"),
    st.Page("pages/live.py", title="Live", icon=":material/videocam:"),
    st.Page("pages/saliency.py", title="Saliency", icon=":material/visibility:"),
    st.Page("pages/clusters.py", title="Clusters", icon=":material/scatter_plot:"),
    st.Page("pages/models.py", title="Models & evaluation", icon=":material/leaderboard:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
]

page = st.navigation(PAGES)
job_worker()
model_pickers()
st.sidebar.caption(
    "Facial emotion recognition on FER2013's seven classes. Model A is usually the baseline, "
    "model B the cluster-masked model of Qiu, *Leaving Some Facial Features Behind* (arXiv 2411.00824)."
)
if public_mode():
    st.sidebar.caption("Public demo: training is off and only the listed datasets can be evaluated.")
page.run()
