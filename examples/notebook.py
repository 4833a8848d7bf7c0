# %% [markdown]
# # initcli in a notebook
#
# A script in notebook cells (`# %%`): open it in Jupyter (jupytext), VS Code or Spyder and run
# cell by cell, or run it whole with `python examples/notebook.py`. It builds a Keras model,
# inspects it live (no file saved), shows the report as the HTML table and as a DataFrame, predicts
# and measures the signal's scale, and lets the training callback stop a badly initialized model.

# %%
import keras
import numpy as np

import initcli
import initcli.keras

keras.utils.set_random_seed(0)

# %% [markdown]
# ## A live model, inspected in memory

# %%
model = keras.Sequential(
    [
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(16, 3, activation="relu", kernel_initializer="he_normal"),
        keras.layers.BatchNormalization(),
        keras.layers.Flatten(),
        keras.layers.Dense(10),
    ],
    name="digits",
)
report = initcli.inspect(model)
report  # noqa: B018 - Jupyter shows the table initcli prints in a terminal, as HTML

# %%
frame = report.to_pandas()
frame[["path", "shape", "initializer", "std", "theory_std", "verdict"]]

# %% [markdown]
# The rows are the model's own weights, in the model's order, named as Keras names them when it
# loads the model's saved file (a Sequential's layers without the model's scope: `dense/kernel`,
# where this live model says `digits/dense/kernel`), so that a live model and its file agree.

# %%
assert list(frame["path"]) == [weight.path.removeprefix(f"{model.name}/") for weight in model.weights]
assert set(frame["verdict"]) <= {"consistent", "constant-ok"}, frame["verdict"].tolist()
print(f"{len(frame)} weights of {model.name}: {sorted(set(frame['verdict']))}")

# %% [markdown]
# ## The gate, and the signal's scale at init

# %%
checked = initcli.check(model)
print("passed" if checked.passed else "FAILED", f"{checked.weights} weights, {checked.errors} errors")

# %%
signal = initcli.propagate(model, batch=16)  # one forward pass, on a private copy of the model
signal.to_pandas()[["layer", "rms", "predicted_rms"]]

# %%
print([run.verdict for run in signal.runs])

# %% [markdown]
# ## The callback: training does not start on a model that would explode

# %%
inputs = keras.Input((32,))
x = inputs
for _ in range(10):
    x = keras.layers.Dense(64, activation="relu", kernel_initializer=keras.initializers.RandomNormal(stddev=10.0))(x)
exploding = keras.Model(inputs, keras.layers.Dense(1)(x), name="exploding")
exploding.compile(optimizer="sgd", loss="mse")
data = np.random.default_rng(0).standard_normal((64, 32)).astype("float32"), np.zeros((64, 1), "float32")
try:
    exploding.fit(*data, epochs=1, verbose=0, callbacks=[initcli.keras.InitCheck(only=["propagation"])])
    raise AssertionError("InitCheck let a model whose signal explodes train")
except initcli.keras.InitCheckError as error:
    print(str(error).splitlines()[0])
    stopped = error.report
stopped.to_pandas()

# %% [markdown]
# A model with Keras's defaults trains with the same callback.

# %%
model.compile(optimizer="sgd", loss="mse")
images = np.random.default_rng(1).standard_normal((32, 28, 28, 1)).astype("float32")
history = model.fit(images, np.zeros((32, 10), "float32"), epochs=1, verbose=0, callbacks=[initcli.keras.InitCheck()])
print("trained one epoch; loss", round(float(history.history["loss"][0]), 4))
