FLASK_APP=app:create_app
# `flask run` listens where `python app.py` does: PORT and HOST when set, else 3000 on
# 127.0.0.1. FLASK_RUN_PORT / FLASK_RUN_HOST in the environment, or --port / --host,
# take precedence over both.
FLASK_RUN_PORT=${PORT:-3000}
FLASK_RUN_HOST=${HOST:-127.0.0.1}
