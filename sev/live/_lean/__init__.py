"""What an idle viewer costs, made small: private, because it relies on the undocumented
internals of python-engineio, python-socketio and uvicorn.

`engine.py` (the Socket.IO and Engine.IO servers with lean per-socket state), `transport.py`
(a connected socket's websocket served without engine.io's tasks), `wire.py` (uvicorn's
websocket protocol keeping nothing of the handshake) and `sendqueue.py` (queues that hold
nothing while empty). Only `sev.live` imports this package; tests/live/test_library_contract.py
pins every internal it touches.
"""
