"""Fit y = 3x + 2 with torch when the app starts, then answer predictions over HTTP.

Only the standard library serves HTTP, so torch is the one dependency.
"""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch

torch.manual_seed(0)
xs = torch.linspace(-1, 1, 64).unsqueeze(1)
ys = 3 * xs + 2
model = torch.nn.Linear(1, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for _ in range(500):
    optimizer.zero_grad()
    loss = torch.nn.functional.mse_loss(model(xs), ys)
    loss.backward()
    optimizer.step()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/predict"):
            x = float(self.path.partition("x=")[2] or 0)
            with torch.no_grad():
                y = model(torch.tensor([[x]])).item()
            body = {"x": x, "y": round(y, 4), "torch": torch.__version__,
                    "cuda_built": torch.backends.cuda.is_built()}
        else:
            body = {"status": "ok"}
        payload = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8080"))
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
