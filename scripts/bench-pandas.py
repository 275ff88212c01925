# The tutorial's transform, as written there (pandas + iterrows), for the benchmark's baseline.
import random, sys
import pandas as pd
src, out = sys.argv[1], sys.argv[2]
df = pd.read_csv(src)
user_map = {u: i + 1 for i, u in enumerate(sorted(df["userId"].unique()))}
item_map = {m: i + 1 for i, m in enumerate(sorted(df["movieId"].unique()))}
files = {k: open(f"{out}/{k}.txt", "w") for k in ("train", "val", "eval")}
for _, row in df.iterrows():
    r = random.random()
    k = "train" if r < 0.7 else "val" if r < 0.85 else "eval"
    files[k].write(f"{user_map[row['userId']]}\t{item_map[row['movieId']]}\n")
for f in files.values():
    f.close()
