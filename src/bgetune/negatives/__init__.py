"""Hard-negative mining: candidate strategies, a false-negative guard and a mixer that fills each query's quota.

Each strategy returns, per query, a ranked list of candidate passage indices with scores. The mixer samples from
them by the weights in params, tops up from the next strategy when one runs dry, adds random "anchor" negatives at
the hard:random ratio, and passes every candidate through the guard, which counts each drop by reason.
"""
