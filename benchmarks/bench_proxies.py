"""Zero-cost proxies on NAS-Bench-Macro: each proxy alone, and predictors with and without proxy features.

Plus a SYNTHETIC check on nb201 cells (`synthetic`), where the encoding learns slowly and a proxy is informative.

Data (read-only, benchmark only): /work/shared/data/nas-bench-macro/nas-bench-macro_cifar10.json (ground truth:
`mean_acc` of 3 CIFAR-10 trainings per network) and CIFAR-10 JPEGs under /work/shared/data/cifar10/train/. The
proxy batch is 64 training images drawn with seed 0, at 32 px, CIFAR-10 normalization; networks are the
benchmark's own (`supernets.get_space("macro")`), randomly initialized with seed 0. Proxy values are cached in
`benchmarks/out/*.jsonl` (`oneshot.score.proxy_table`), so phases resume and never compute twice.

Phases, as run for the figures below (`compute-*` take long on one CPU thread; cached, so they resume):
    ALL=synflow,params,flops,nwot,jacov,snip,grad_norm,fisher,zen,meco,zico
    python benchmarks/bench_proxies.py compute-macro --n 600 --proxies synflow,params,flops,nwot,jacov
    python benchmarks/bench_proxies.py compute-macro --n 600 --proxies snip,grad_norm,fisher,zen \
        --table macro_proxies_expensive.jsonl
    python benchmarks/bench_proxies.py compute-macro --n 40 --proxies grasp --table macro_proxies_expensive.jsonl
    python benchmarks/bench_proxies.py compute-macro --n 600 --proxies meco,zico --table macro_proxies_2023.jsonl
    python benchmarks/bench_proxies.py compute-macro --n 600 --proxies nwot,synflow,meco,jacov \
        --table macro_proxies_supernet.jsonl --weights FAIR_6.ckpt   # inherited weights (`@supernet` columns)
    python benchmarks/bench_proxies.py batch-nb201 --n 200       # batch-to-batch tau on nb201 cells
    python benchmarks/bench_proxies.py batch-nb201 --n 200 --proxies meco,zico
    python benchmarks/bench_proxies.py timing --n 4              # CPU seconds per network
    python benchmarks/bench_proxies.py report --models gp,xgb --features "all=$ALL"
    python benchmarks/bench_proxies.py report --models auto --features "all=$ALL"
    python benchmarks/bench_proxies.py residual --proxies $ALL,nwot@supernet,meco@supernet   # what proxies add
    python benchmarks/bench_proxies.py report --features "cheap=synflow,params,flops;nwot=synflow,params,flops,nwot"
    python benchmarks/bench_proxies.py synthetic                 # SYNTHETIC nb201 check, no data needed
    python benchmarks/bench_proxies.py report --models xgb \
        --features "cheap=synflow,params,flops;nwot=synflow,params,flops,nwot"
    python benchmarks/bench_proxies.py synthetic --models xgb    # the same two tables for XGBoost
(FAIR_6.ckpt: the 6-epoch CPU-scale fair-sampling macro supernet of bench_fidelity_settings.py.)

Measured 2026-12-01 on the shared 2-core machine, one torch thread per process.

Proxy alone, Kendall tau with mean_acc over the same 600 networks (a random sample of benchmark keys, seed 0;
grasp: the first 40 of them, standard error ~0.08):
    proxy           tau      | proxy           tau      | on supernet weights (`@supernet`)
    nwot@init     +0.736     | zico@init     +0.531     | nwot@supernet     +0.728
    fisher@init   +0.675     | zen           +0.519     | synflow@supernet  +0.540
    grad_norm@init +0.605    | snip@init     +0.511     | meco@supernet     +0.427
    flops         +0.563     | meco@init     +0.478     | jacov@supernet    +0.199
    synflow@init  +0.537     | jacov@init    +0.473     |
    params        +0.222     | grasp@init    -0.064 (40)|
(the supernet is undertrained: 6 epochs on 5,000 images; its weights rank no better than a random init.)

CPU seconds per network on one thread (`timing`: thread CPU time, so other processes on the shared machine do
not count; mean of 4 random networks, batch 64 at 32 px):
    space             build synflow nwot jacov snip grad_norm fisher grasp zen  meco zico  s+g+f   default set
    nb201 (C=16, N=5) 0.03  0.08    0.93 0.94  0.90 0.85      0.97   2.85  1.23 0.53 1.09  0.96    5.86
    macro             0.02  0.12    0.68 1.02  0.94 1.00      1.19   3.86  0.87 0.25 1.33  1.06    5.39
"s+g+f": snip, grad_norm and fisher asked for together (`score_many`, which proxy tables use): one shared
backward pass instead of three. "default set": `oneshot proxies`' default, every proxy but grasp (params and
flops in tables come from the analytic cost model: microseconds, no network built).
All 6,561 macro networks once, on one thread: synflow + params + flops ~ 6,561 x 0.14 s = 15 minutes (the set
for on-demand proxies of thousands of search candidates on a CPU); the default set ~ 10 hours (for the few
hundred subnets a predictor is trained on, or on a GPU).

All eleven proxies (`report --models gp,xgb --features "all=$ALL"`, 600 networks, 20 seeds, train on n, test
on the rest; columns as in the tables below), Kendall tau mean +- std, then stack minus each baseline (mean +-
standard error, seeds where it is positive):
    model n    best proxy      onehot          zc              joint           stack
    gp    25   0.716 +- 0.028  0.772 +- 0.062  0.812 +- 0.021  0.792 +- 0.057  0.814 +- 0.035
    gp    50   0.727 +- 0.022  0.853 +- 0.013  0.836 +- 0.014  0.854 +- 0.013  0.861 +- 0.011
    gp    100  0.731 +- 0.014  0.879 +- 0.009  0.855 +- 0.009  0.882 +- 0.007  0.883 +- 0.010
    gp    200  0.734 +- 0.007  0.898 +- 0.007  0.867 +- 0.008  0.902 +- 0.005  0.902 +- 0.006
    xgb   25   0.716 +- 0.028  0.703 +- 0.060  0.786 +- 0.017  0.796 +- 0.022  0.786 +- 0.032
    xgb   50   0.727 +- 0.022  0.815 +- 0.015  0.819 +- 0.011  0.838 +- 0.012  0.846 +- 0.015
    xgb   100  0.731 +- 0.014  0.874 +- 0.008  0.841 +- 0.011  0.863 +- 0.011  0.880 +- 0.010
    xgb   200  0.734 +- 0.007  0.900 +- 0.008  0.857 +- 0.008  0.880 +- 0.009  0.901 +- 0.007
    model n    stack - best proxy       stack - onehot           stack - joint
    gp    25   +0.098 +- 0.008 (20/20)  +0.042 +- 0.008 (18/20)  +0.022 +- 0.007 (15/20)
    gp    50   +0.134 +- 0.006 (20/20)  +0.008 +- 0.003 (15/20)  +0.006 +- 0.003 (16/20)
    gp    100  +0.152 +- 0.004 (20/20)  +0.004 +- 0.001 (14/20)  +0.001 +- 0.001 (12/20)
    gp    200  +0.168 +- 0.001 (20/20)  +0.004 +- 0.001 (19/20)  +0.000 +- 0.000 (11/20)
    xgb   25   +0.070 +- 0.009 (19/20)  +0.083 +- 0.009 (20/20)  -0.010 +- 0.007 (5/20)
    xgb   50   +0.119 +- 0.007 (20/20)  +0.031 +- 0.005 (18/20)  +0.008 +- 0.004 (17/20)
    xgb   100  +0.149 +- 0.004 (20/20)  +0.006 +- 0.002 (17/20)  +0.017 +- 0.002 (20/20)
    xgb   200  +0.167 +- 0.001 (20/20)  +0.002 +- 0.001 (14/20)  +0.021 +- 0.001 (20/20)
    auto  25   0.716 +- 0.028  0.770 +- 0.066  0.813 +- 0.017  0.802 +- 0.049  0.809 +- 0.039  (onehot +0.039 +- 0.009, 15/20)
    auto  50   0.727 +- 0.022  0.848 +- 0.015  0.837 +- 0.015  0.858 +- 0.014  0.860 +- 0.012  (+0.012 +- 0.004, 16/20)
    auto  100  0.731 +- 0.014  0.881 +- 0.007  0.858 +- 0.011  0.884 +- 0.009  0.884 +- 0.011  (+0.003 +- 0.002, 13/20)
    auto  200  0.734 +- 0.007  0.901 +- 0.006  0.870 +- 0.007  0.903 +- 0.006  0.904 +- 0.006  (+0.003 +- 0.001, 18/20)
(`auto`: the XGBoost and GP stacks blended by their held-out predictions; "joint" there is both members with
proxies="joint". The stacks' held-out predictions saw their own NNLS weights, so the blend weight is chosen
on slightly optimistic figures; it still tracks the better member.)
Adding the four `@supernet` columns changed every stack figure by at most 0.002.
Reading: with every proxy the stack beats both the best proxy and the predictor without proxies at every size
from 25 to 200, the GP by +0.042 / +0.008 / +0.004 / +0.004 (each at least 2.7 standard errors), XGBoost by
+0.083 / +0.031 / +0.006 / +0.002 (the last 2 standard errors, 14/20 seeds). The proxies together rank far
better than any one (`zc` alone 0.81-0.87 against 0.72-0.73 for the best single proxy) and beat one-hot outright
at 25. With only nwot and the cheap proxies (tables below) the gain stops at 50 networks.

What proxies still know once the encoding has learned (`residual`, 20 seeds): the partial correlation, on
held-out networks, of the truth and each proxy given a one-hot GP's prediction (normal scores of ranks):
    n    GP tau  fisher  nwot    meco    jacov   grad_norm zico   synflow flops   nwot@supernet
    25   0.772   +0.417  +0.498  +0.227  +0.188  +0.352    +0.282 +0.284  +0.292  +0.486
    50   0.853   +0.234  +0.260  +0.076  +0.072  +0.220    +0.189 +0.188  +0.188  +0.249
    100  0.879   +0.135  +0.111  +0.107  +0.086  +0.080    +0.042 +0.032  +0.011  +0.114
    200  0.898   +0.104  +0.057  +0.078  +0.053  +0.045    +0.012 -0.002  -0.022  +0.062
(standard errors 0.02-0.045.) The cost-like proxies (flops, params, synflow, snip, zen) say nothing more by 100
networks: the encoding has learned them. fisher, nwot, meco and jacov keep a small independent signal at 200,
which is what the full set's +0.004 is made of. The table does not cap this: a perfect predictor of expected
accuracy would reach Kendall tau ~0.95 against the mean of 3 runs (`residual` prints it, from the seed-to-seed
tau 0.881 by Spearman-Brown), so 0.90 at 200 networks is not the noise ceiling.

Predictors (GP, `predictors.GPPredictor` defaults), train on n networks, test on the rest of the sample, 20
seeds (same split per seed for every column), Kendall tau mean +- std. "best proxy": the feature-set proxy with
the highest tau on the n training networks, scored on the same held-out networks; "joint": onehot+zc in one
GP kernel (`proxies="joint"`, the behaviour before stacking); "stack": onehot+zc as the GP fits it by default
(`predictors.stacking`: one-hot GP, joint GP, proxy GP and the best proxy, weighted by NNLS on held-out
predictions). Last columns: paired differences stack minus each baseline, mean +- standard error (seeds where
it is positive). Measured with `report --features "cheap=synflow,params,flops;nwot=synflow,params,flops,nwot"`
after `compute-macro --n 600 --proxies synflow,params,flops,nwot` (so both sets have the same 600 networks).

features synflow, params, flops (600 networks):
    n    best proxy      onehot          zc              joint           stack
    25   0.555 +- 0.012  0.772 +- 0.062  0.618 +- 0.020  0.775 +- 0.061  0.771 +- 0.054
    50   0.557 +- 0.012  0.853 +- 0.013  0.638 +- 0.010  0.852 +- 0.012  0.852 +- 0.013
    100  0.552 +- 0.014  0.879 +- 0.009  0.645 +- 0.012  0.880 +- 0.008  0.878 +- 0.009
    200  0.561 +- 0.014  0.898 +- 0.007  0.655 +- 0.010  0.901 +- 0.005  0.901 +- 0.006
    n    stack - best proxy       stack - onehot           stack - joint
    25   +0.216 +- 0.013 (20/20)  -0.001 +- 0.006 (12/20)  -0.004 +- 0.004 (9/20)
    50   +0.295 +- 0.004 (20/20)  -0.001 +- 0.002 (9/20)   -0.000 +- 0.001 (11/20)
    100  +0.326 +- 0.003 (20/20)  -0.001 +- 0.001 (7/20)   -0.002 +- 0.001 (4/20)
    200  +0.340 +- 0.003 (20/20)  +0.003 +- 0.001 (17/20)  -0.001 +- 0.000 (2/20)
features synflow, params, flops, nwot (600 networks):
    n    best proxy      onehot          zc              joint           stack
    25   0.735 +- 0.002  0.772 +- 0.062  0.734 +- 0.018  0.781 +- 0.060  0.798 +- 0.043
    50   0.737 +- 0.003  0.853 +- 0.013  0.756 +- 0.007  0.854 +- 0.011  0.856 +- 0.010
    100  0.734 +- 0.004  0.879 +- 0.009  0.755 +- 0.011  0.880 +- 0.008  0.878 +- 0.009
    200  0.734 +- 0.007  0.898 +- 0.007  0.760 +- 0.008  0.901 +- 0.005  0.900 +- 0.005
    n    stack - best proxy       stack - onehot           stack - joint
    25   +0.062 +- 0.010 (19/20)  +0.025 +- 0.008 (16/20)  +0.016 +- 0.007 (16/20)
    50   +0.119 +- 0.002 (20/20)  +0.003 +- 0.003 (16/20)  +0.002 +- 0.002 (15/20)
    100  +0.144 +- 0.002 (20/20)  -0.001 +- 0.001 (11/20)  -0.002 +- 0.001 (8/20)
    200  +0.166 +- 0.002 (20/20)  +0.002 +- 0.001 (16/20)  -0.001 +- 0.000 (5/20)
Reading: on NAS-Bench-Macro a one-hot GP is already far better than any proxy from 25 networks on (0.77 vs
0.735 for nwot, the best proxy) and reaches 0.88 at 100 (the ceiling against the mean of 3 runs is ~0.95).
With nwot, the stack beats both baselines at 25 (+0.025 over one-hot, +0.062 over nwot); at 50 the gain over
one-hot is +0.003 +- 0.003 (not significant), at 100 it is -0.001 +- 0.001 (the target "beats the predictor
without proxies" is NOT met there), at 200 +0.002 +- 0.001 (16/20). With the weak cheap proxies (best 0.56)
it ties one-hot (-0.001 at 25-100, +0.003 at 200): the weights leave them out. It beats the best proxy
everywhere by 0.06-0.34.

SYNTHETIC check (`synthetic`: no data needed) on a cell space where an encoding learns slowly and one proxy
is informative, like the held-back NB201-sized table (one-hot 0.586, best proxy 0.645 at 100 networks). 2000
distinct nb201 cells; ground truth `cell` (bench_predictors' NB201-like accuracy) or `pairwise`
(predictors.synthetic, noise 0.02); proxies: `synthetic` = the truth's normal score plus independent noise at
correlation rho, `noise` (pure noise), and the cells' real `flops` and `params`. 20 seeds, test on the rest:
SYNTHETIC cell, rho 0.80 (proxy taus: synthetic 0.591, noise 0.002, flops 0.472, params 0.472):
    n    best proxy      onehot          zc              joint           stack
    25   0.567 +- 0.048  0.486 +- 0.104  0.584 +- 0.039  0.605 +- 0.059  0.635 +- 0.059
    50   0.578 +- 0.036  0.715 +- 0.028  0.617 +- 0.009  0.737 +- 0.019  0.749 +- 0.017
    100  0.591 +- 0.002  0.770 +- 0.019  0.624 +- 0.005  0.780 +- 0.016  0.789 +- 0.015
    200  0.591 +- 0.002  0.822 +- 0.008  0.628 +- 0.004  0.823 +- 0.006  0.830 +- 0.006
    n    stack - best proxy       stack - onehot           stack - joint
    25   +0.068 +- 0.010 (19/20)  +0.150 +- 0.020 (19/20)  +0.030 +- 0.011 (16/20)
    50   +0.170 +- 0.008 (20/20)  +0.033 +- 0.004 (19/20)  +0.012 +- 0.003 (16/20)
    100  +0.198 +- 0.003 (20/20)  +0.019 +- 0.002 (19/20)  +0.008 +- 0.001 (19/20)
    200  +0.239 +- 0.001 (20/20)  +0.008 +- 0.001 (20/20)  +0.007 +- 0.001 (20/20)
SYNTHETIC pairwise, rho 0.85 (proxy taus: synthetic 0.640, noise 0.015, flops 0.082, params 0.082):
    n    best proxy      onehot          zc              joint           stack
    25   0.640 +- 0.001  0.298 +- 0.041  0.590 +- 0.030  0.408 +- 0.055  0.640 +- 0.022
    50   0.640 +- 0.001  0.406 +- 0.030  0.622 +- 0.011  0.549 +- 0.032  0.660 +- 0.012
    100  0.640 +- 0.002  0.525 +- 0.026  0.628 +- 0.009  0.639 +- 0.018  0.690 +- 0.007
    200  0.640 +- 0.002  0.649 +- 0.018  0.634 +- 0.004  0.698 +- 0.012  0.733 +- 0.008
    n    stack - best proxy       stack - onehot           stack - joint
    25   -0.000 +- 0.005 (15/20)  +0.341 +- 0.010 (20/20)  +0.231 +- 0.012 (20/20)
    50   +0.020 +- 0.003 (18/20)  +0.254 +- 0.006 (20/20)  +0.111 +- 0.006 (20/20)
    100  +0.050 +- 0.002 (20/20)  +0.165 +- 0.005 (20/20)  +0.051 +- 0.003 (20/20)
    200  +0.093 +- 0.002 (20/20)  +0.084 +- 0.003 (20/20)  +0.035 +- 0.002 (20/20)
Reading: where the proxy is worth more than the encoding the stack follows it (ties the best proxy at 25 on
`pairwise`, -0.000 +- 0.005) and adds the encoding as it learns (+0.05 over the proxy at 100, where the
one-kernel GP only ties it); where the encoding learns fast (`cell`) it adds the proxy at every size.

XGBoost (`--models xgb`, `predictors.XGBPredictor` defaults: 8 boosters on K-fold complements, depth 2,
300 rounds), measured 2026-12-01 (load ~3-4), same splits, seeds and columns as above: "joint" is onehot+zc in
one ensemble (`proxies="joint"`, the behaviour before stacking), "stack" the default (`predictors.stacking`:
an ensemble on onehot, one on onehot+zc and the best proxy, weighted by NNLS on the ensembles' out-of-fold
predictions). Last column: this thread's CPU seconds per fit (onehot, stack), mean over the 20 seeds.
features synflow, params, flops (600 networks):
    n    best proxy      onehot          zc              joint           stack           CPU s onehot, stack
    25   0.555 +- 0.012  0.703 +- 0.060  0.482 +- 0.053  0.714 +- 0.037  0.717 +- 0.045  0.25, 0.50
    50   0.557 +- 0.012  0.815 +- 0.015  0.530 +- 0.033  0.806 +- 0.016  0.829 +- 0.018  0.26, 0.57
    100  0.552 +- 0.014  0.874 +- 0.008  0.587 +- 0.015  0.859 +- 0.016  0.876 +- 0.011  0.31, 0.57
    200  0.561 +- 0.014  0.900 +- 0.008  0.621 +- 0.013  0.887 +- 0.008  0.902 +- 0.006  0.33, 0.65
    n    stack - best proxy       stack - onehot           stack - joint
    25   +0.162 +- 0.011 (20/20)  +0.014 +- 0.011 (12/20)  +0.003 +- 0.006 (12/20)
    50   +0.272 +- 0.005 (20/20)  +0.014 +- 0.004 (15/20)  +0.023 +- 0.005 (18/20)
    100  +0.323 +- 0.004 (20/20)  +0.002 +- 0.002 (15/20)  +0.017 +- 0.002 (19/20)
    200  +0.341 +- 0.003 (20/20)  +0.002 +- 0.001 (15/20)  +0.014 +- 0.002 (20/20)
features synflow, params, flops, nwot (600 networks):
    n    best proxy      onehot          zc              joint           stack           CPU s onehot, stack
    25   0.735 +- 0.002  0.703 +- 0.060  0.668 +- 0.031  0.756 +- 0.027  0.771 +- 0.026  0.24, 0.49
    50   0.737 +- 0.003  0.815 +- 0.015  0.704 +- 0.012  0.822 +- 0.015  0.835 +- 0.017  0.25, 0.44
    100  0.734 +- 0.004  0.874 +- 0.008  0.727 +- 0.012  0.860 +- 0.014  0.876 +- 0.010  0.20, 0.43
    200  0.734 +- 0.007  0.900 +- 0.008  0.742 +- 0.010  0.886 +- 0.006  0.901 +- 0.006  0.24, 0.53
    n    stack - best proxy       stack - onehot           stack - joint
    25   +0.035 +- 0.006 (19/20)  +0.068 +- 0.011 (19/20)  +0.015 +- 0.005 (14/20)
    50   +0.098 +- 0.004 (20/20)  +0.020 +- 0.005 (18/20)  +0.013 +- 0.004 (16/20)
    100  +0.142 +- 0.002 (20/20)  +0.002 +- 0.002 (12/20)  +0.016 +- 0.002 (20/20)
    200  +0.167 +- 0.001 (20/20)  +0.001 +- 0.001 (13/20)  +0.016 +- 0.001 (20/20)
SYNTHETIC (as above, `synthetic --models xgb`), stack minus each baseline, 20 seeds:
    n    cell: best proxy / onehot / joint                          pairwise: best proxy / onehot / joint
    25   +0.057 +- 0.008  +0.104 +- 0.017  +0.005 +- 0.008   |  +0.000 +- 0.005  +0.347 +- 0.008  +0.101 +- 0.010
    50   +0.160 +- 0.008  +0.037 +- 0.005  +0.044 +- 0.003   |  +0.018 +- 0.003  +0.255 +- 0.005  +0.059 +- 0.004
    100  +0.196 +- 0.004  +0.015 +- 0.003  +0.043 +- 0.002   |  +0.049 +- 0.002  +0.167 +- 0.006  +0.060 +- 0.003
    200  +0.243 +- 0.002  +0.007 +- 0.001  +0.048 +- 0.003   |  +0.086 +- 0.001  +0.093 +- 0.003  +0.061 +- 0.002
(stack tau: cell 0.624 / 0.739 / 0.787 / 0.834, pairwise 0.640 / 0.658 / 0.689 / 0.726 at 25 / 50 / 100 / 200.)
Reading: for XGBoost one ensemble over onehot+zc ("joint") is WORSE than one-hot alone from 100 networks on
macro (-0.014; presumably the proxy columns take splits the one-hot ones need) and on `cell` from 50; the stack
fixes that and beats joint at every size and table (significantly everywhere except 25 networks with the
cheap proxies and on `cell`). Against one-hot alone it wins at 25-50 with nwot (+0.068, +0.020) and ties
at 100-200 (+0.002 +- 0.002, +0.001 +- 0.001: the target "beats the predictor without proxies" is met at
25-50 and only within noise at 100-200 on macro with these four proxies; all eleven meet it, above); it beats
the best proxy everywhere except a tie at 25 on `pairwise` (+0.000 +- 0.005), where the proxy is worth far
more than 25 networks of encoding. Cost: about twice one ensemble (two ensembles; the weights reuse the
out-of-fold predictions the ensemble makes anyway). Members tried in development (10 seeds on macro with
nwot at 25-200, 6 seeds on the synthetic tables at 25 and 100): a third member on the proxy columns alone
changed nothing on macro (within 0.001; an ensemble there got weight <= 0.04) and lost at 25 on `pairwise`
(0.635 as an ensemble, 0.630 as a GP, against 0.647 without it), so it is left out; replacing the joint
ensemble by it lost 0.003-0.006 on macro at 50-200.

How the stack was chosen (`predictors/stacking.py` docstring; development runs, not rerun here): an additive
kernel with one amplitude and lengthscale per feature group (a_1 k_onehot + a_2 k_zc, marginal likelihood)
lost to one-hot alone at 25 and 50 on macro (-0.013 +- 0.009, -0.022 +- 0.005; 20 seeds, 300 networks) and
trailed the one-kernel GP on the synthetic `cell` objective (0.583 / 0.711 / 0.770 / 0.821 against 0.605 /
0.738 / 0.780 / 0.824 at 25-200, 20 seeds); a product of group kernels and a linear proxy kernel also lost
to one-hot on macro (5 seeds); weights by held-out Kendall tau on a grid or by greedy ensemble selection were
equal or worse than NNLS (10 seeds); every proxy alone as a member lost 0.02 to one best proxy at 25 on
`pairwise` (10 seeds). Scaling the zc columns of the one-kernel GP (x3, x6) did not help (5 seeds, n = 25, 100).

Batch-to-batch Kendall tau (`batch-nb201 --n 200`: 200 random nb201 cells, C=16, N=5, two batches of 64
CIFAR-10 images drawn with seeds 0 and 1): synflow 1.000 (it reads only the batch's shape: an all-ones image),
nwot 0.993, jacov 0.929 (30 cells earlier: 1.000, 0.995, 0.871).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's packages, not an installed copy
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_predictors' cell objective

from oneshot.data import CIFAR10_MEAN, CIFAR10_STD, create_datamodule  # noqa: E402
from oneshot.score.proxy_table import ProxyBatch, proxy_columns, score_proxies  # noqa: E402
from supernets import Arch, get_space  # noqa: E402

MACRO = Path("/work/shared/data/nas-bench-macro/nas-bench-macro_cifar10.json")
CIFAR = Path("/work/shared/data/cifar10")
OUT = Path(__file__).resolve().parent / "out"
CHEAP = "synflow,nwot,jacov,params,flops"


def cifar_batch(size: int = 64, seed: int = 0) -> ProxyBatch:
    """`size` CIFAR-10 training images at 32 px, CIFAR normalization, drawn by `seed`."""
    dm = create_datamodule("imagefolder", path=str(CIFAR), image_size=32, mean=CIFAR10_MEAN, std=CIFAR10_STD)
    return ProxyBatch.from_datamodule(dm, size, seed)


def macro_sample(n: int, seed: int = 0) -> list[str]:
    """`n` distinct benchmark keys drawn uniformly with `seed`; a smaller n is a prefix of a larger one."""
    keys = sorted(json.loads(MACRO.read_text()))
    order = np.random.default_rng(seed).permutation(len(keys))
    return [keys[i] for i in order[:n]]


def compute_macro(n: int, proxies: list[str], table: str, weights: str | None = None) -> None:
    space = get_space("macro")
    batch = cifar_batch()
    start = time.perf_counter()
    records = score_proxies(space, macro_sample(n), proxies, batch, OUT / table, weights=weights, progress=True)
    print(f"{len(records)} macro networks, proxies {proxies}: {time.perf_counter() - start:.0f} s this run")
    for column in records[0]["seconds"]:
        secs = [r["seconds"][column] for r in records if column in r.get("seconds", {})]
        print(f"  {column:18s} {np.mean(secs):.3f} s per network (mean), {np.max(secs):.3f} s max")


def batch_nb201(n: int, proxies: tuple[str, ...] = ("synflow", "jacov", "nwot")) -> None:
    """Kendall tau between proxy values on two different batches, over `n` random nb201 cells (C=16, N=5)."""
    from scipy.stats import kendalltau

    space = get_space("nb201")
    archs = [space.sample(np.random.default_rng([7, i])) for i in range(4 * n)]
    archs = list(dict.fromkeys(archs))[:n]
    values = {}
    for b_seed in (0, 1):
        batch = cifar_batch(64, b_seed)
        records = score_proxies(space, archs, list(proxies), batch, OUT / "nb201_batches.jsonl", progress=True)
        values[b_seed] = records
    print(f"batch-to-batch Kendall tau, {len(archs)} nb201 cells (C=16, N=5), two batches of 64 CIFAR-10 images")
    for column in proxy_columns(proxies, "init"):
        a = _finite([r[column] for r in values[0]])
        b = _finite([r[column] for r in values[1]])
        secs = np.mean([r["seconds"][column] for r in values[0]])
        print(f"  {column:14s} tau {kendalltau(a, b)[0]:.3f}   {secs:.3f} s per cell")


def timing(n: int) -> None:
    """CPU seconds (this thread's, so other processes on a shared machine do not count) per network and proxy."""
    from oneshot.cli.proxies import DEFAULT_PROXIES
    from oneshot.score.proxies import get_proxy, list_proxies, score_many
    from supernets import get_config

    batch = cifar_batch()
    for name in ("nb201", "macro"):
        space, config = get_space(name), get_config(name)
        archs = [space.sample(np.random.default_rng([11, i])) for i in range(n)]
        cpu: dict[str, list[float]] = {}
        for arch in archs:
            torch.manual_seed(0)
            t0 = time.thread_time()
            net = config.build_subnet(arch)
            cpu.setdefault("(build)", []).append(time.thread_time() - t0)
            for proxy in list_proxies():
                if proxy.startswith("_"):
                    continue
                t0 = time.thread_time()
                get_proxy(proxy)(net, batch.images, batch.labels)
                cpu.setdefault(proxy, []).append(time.thread_time() - t0)
            for label, names in (("snip+grad_norm+fisher shared", ["snip", "grad_norm", "fisher"]),
                                 ("CLI default set", DEFAULT_PROXIES.split(","))):
                t0 = time.thread_time()
                score_many(net, batch.images, batch.labels, names)
                cpu.setdefault(label, []).append(time.thread_time() - t0)
        print(f"{name}: CPU seconds per network on one thread, batch 64, mean (max) over {n} random networks")
        print("  " + "  ".join(f"{k} {np.mean(v):.2f} ({np.max(v):.2f})" for k, v in cpu.items()), flush=True)


def _finite(values: list) -> np.ndarray:
    """Undefined proxy values (null) rank below every defined one."""
    v = np.array([np.nan if x is None else float(x) for x in values])
    low = np.nanmin(v) - 1.0 if np.isfinite(v).any() else 0.0
    return np.where(np.isfinite(v), v, low)


class TableSource:
    """Proxy values of the benchmark sample, read from the cache tables (a `ProxySource` for the zc encoding)."""

    def __init__(self, rows: dict[str, dict], names: list[str]) -> None:
        self.names = names
        self.values = {a: np.array([np.nan if r[c] is None else float(r[c]) for c in names]) for a, r in rows.items()}

    def __call__(self, archs) -> np.ndarray:
        return np.stack([self.values[str(a)] for a in archs])

    def reference(self) -> np.ndarray:
        return np.stack(list(self.values.values()))


def _rows() -> dict[str, dict]:
    """arch -> every proxy column measured for it (cheap and expensive tables merged)."""
    from oneshot.table import read_table

    rows: dict[str, dict] = {}
    for path in sorted(OUT.glob("macro_proxies*.jsonl")):  # every table `compute-macro --table` wrote
        for r in read_table(path)[1]:
            row = rows.setdefault(r["arch"], {"seconds": {}})
            row.update({k: v for k, v in r.items() if k not in META})
            row["seconds"].update(r["seconds"])
    return rows


def _named(column: str, proxies: list[str]) -> bool:
    """Whether a table column is one of `proxies`: `nwot` names nwot@init, `nwot@supernet` names itself."""
    return column in proxies or column.removesuffix("@init") in proxies


META = ("key", "arch", "batch", "batch_size", "seed", "weights", "code_version", "seconds")


COLUMNS = ("best proxy", "onehot", "zc", "joint", "stack")


def compare(space, archs: list[Arch], y: np.ndarray, source: TableSource, sizes: list[int], seeds: int,
            models: list[str]) -> None:
    """Kendall tau on the held-out rest of `archs` after training on n of them, per predictor and size."""
    from predictors import create_predictor, get_encoding, kendall_tau

    names = list(source.names)
    raw = source(archs)
    print(f"  {'model':6s} {'n':>4s}  " + "  ".join(f"{c:>15s}" for c in COLUMNS)
          + "   stack - best proxy      stack - onehot          stack - joint           CPU s/fit onehot, stack")
    for model in models:
        for n in sizes:
            res: dict[str, list[float]] = {k: [] for k in COLUMNS}
            cpu: dict[str, list[float]] = {"onehot": [], "stack": []}
            for seed in range(seeds):
                perm = np.random.default_rng([seed, n]).permutation(len(archs))
                tr, te = perm[:n], perm[n:]
                a_tr, a_te = [archs[i] for i in tr], [archs[i] for i in te]
                # the proxy an engineer would pick from the n trained networks, scored on the held-out rest
                best = max(range(len(names)), key=lambda j: kendall_tau(y[tr], _finite(list(raw[tr, j]))))
                res["best proxy"].append(kendall_tau(y[te], _finite(list(raw[te, best]))))
                # `auto` passes options to its XGBoost and GP members
                joint = {"proxies": "joint"} if model != "auto" else {"xgb": {"proxies": "joint"},
                                                                       "gp": {"proxies": "joint"}}
                for col, enc, extra in (("onehot", "onehot", {}), ("zc", "zc", {}),
                                        ("joint", "onehot+zc", joint), ("stack", "onehot+zc", {})):
                    encoding = get_encoding(enc, space, proxies=source) if "zc" in enc else enc
                    t0 = time.thread_time()  # this thread's CPU: other processes on a shared machine do not count
                    pred = create_predictor(model, space, encoding=encoding, seed=seed, **extra).fit(a_tr, y[tr])
                    if col in cpu:
                        cpu[col].append(time.thread_time() - t0)
                    res[col].append(kendall_tau(y[te], pred.predict(a_te)[0]))
            cells = "  ".join(f"{np.mean(res[c]):7.3f} +- {np.std(res[c]):.3f}" for c in COLUMNS)
            print(f"  {model:6s} {n:4d}  {cells}   " + "  ".join(_paired(res["stack"], res[c])
                                                             for c in ("best proxy", "onehot", "joint"))
                  + f"  {np.mean(cpu['onehot']):.2f}, {np.mean(cpu['stack']):.2f}", flush=True)


def _paired(a: list[float], b: list[float]) -> str:
    """a - b over the same seeds and splits: mean +- standard error (seeds where it is positive)."""
    diff = np.array(a) - np.array(b)
    return f"{diff.mean():+.3f} +- {diff.std(ddof=1) / np.sqrt(len(diff)):.3f} ({int((diff > 0).sum())}/{len(diff)})"


def report(seeds: int, sizes: list[int], models: list[str], feature_sets: dict[str, list[str]]) -> None:
    from predictors import kendall_tau

    truth = {k: v["mean_acc"] for k, v in json.loads(MACRO.read_text()).items()}
    rows = _rows()
    space = get_space("macro")
    columns = sorted({k for r in rows.values() for k in r if k != "seconds"})
    print("Proxy alone: Kendall tau with mean_acc (NAS-Bench-Macro, batch 64 CIFAR-10 images, init seed 0; "
          "undefined values rank last)")
    for c in columns:
        archs = [a for a, r in rows.items() if c in r]
        y = np.array([truth[a] for a in archs])
        secs = np.mean([rows[a]["seconds"][c] for a in archs])
        print(f"  {c:16s} n={len(archs):4d}  tau {kendall_tau(y, _finite([rows[a][c] for a in archs])):+.3f}  "
              f"{secs:.3f} s/network (1 thread, shared machine)")
    for label, proxies in feature_sets.items():
        names = [c for c in columns if _named(c, proxies)]
        archs = [a for a, r in rows.items() if all(c in r for c in names)]
        source = TableSource({a: rows[a] for a in archs}, names)
        y = np.array([truth[a] for a in archs])
        print(f"\nPredictors, features {label} = {names}: {len(archs)} networks, train on n, test on the rest, "
              f"{seeds} seeds (Kendall tau mean +- std; joint = onehot+zc in one model, proxies='joint'; stack = "
              "onehot+zc as the predictor stacks it by default)")
        compare(space, [Arch.from_str(space, a) for a in archs], y, source, sizes, seeds, models)


def residual(seeds: int, sizes: list[int], proxies: list[str]) -> None:
    """What proxies know that a one-hot GP fitted on n networks does not: partial correlations on held-out networks.

    For each seed, a GP on the one-hot encoding (`GPPredictor` defaults) is fitted to n networks and predicts
    the rest. In normal scores of ranks, the truth and each proxy are regressed on that prediction; the
    correlation of the two residuals is what the proxy could still add to the encoding. Also the ceiling: the
    Kendall tau a perfect predictor of the networks' expected accuracy would get against the table's mean of 3
    runs, estimated from its seed-to-seed agreement (normal scores, equal noise per run).
    """
    from scipy.stats import norm, rankdata

    from predictors import create_predictor, kendall_tau

    table = json.loads(MACRO.read_text())
    runs = np.array([table[k]["test_acc"] for k in sorted(table)])  # (6561, 3)
    pairs = [kendall_tau(runs[:, i], runs[:, j]) for i, j in ((0, 1), (0, 2), (1, 2))]
    r = np.sin(np.pi / 2 * np.mean(pairs))  # correlation of two runs' normal scores
    reliability = 3 * r / (1 + 2 * r)  # of the mean of 3 runs (Spearman-Brown)
    ceiling = 2 / np.pi * np.arcsin(np.sqrt(reliability))
    print(f"seed-to-seed Kendall tau {np.mean(pairs):.3f} over {len(runs)} networks; estimated ceiling of a "
          f"predictor against the mean of 3 runs: tau {ceiling:.3f}")
    rows = _rows()
    names = [c for c in sorted({k for r in rows.values() for k in r if k != "seconds"}) if _named(c, proxies)]
    archs = [a for a, r in rows.items() if all(c in r for c in names)]
    y = np.array([table[a]["mean_acc"] for a in archs])
    space = get_space("macro")
    subnets = [Arch.from_str(space, a) for a in archs]

    def scores(v: np.ndarray) -> np.ndarray:
        return norm.ppf((rankdata(v) - 0.5) / len(v))

    def regressed_out(v: np.ndarray, on: np.ndarray) -> np.ndarray:
        return v - np.polyval(np.polyfit(on, v, 1), on)

    print(f"partial correlation with the truth given a one-hot GP's prediction, {len(archs)} networks, {seeds} "
          "seeds (mean +- standard error); GP tau on the held-out networks")
    for n in sizes:
        partial: dict[str, list[float]] = {c: [] for c in names}
        taus = []
        for seed in range(seeds):
            perm = np.random.default_rng([seed, n]).permutation(len(archs))
            tr, te = perm[:n], perm[n:]
            gp = create_predictor("gp", space, encoding="onehot", seed=seed).fit([subnets[i] for i in tr], y[tr])
            pred = gp.predict([subnets[i] for i in te])[0]
            taus.append(kendall_tau(y[te], pred))
            z_pred = scores(pred)
            res = regressed_out(scores(y[te]), z_pred)
            for c in names:
                proxy = scores(_finite([rows[archs[i]][c] for i in te]))
                partial[c].append(float(np.corrcoef(res, regressed_out(proxy, z_pred))[0, 1]))
        cells = "  ".join(f"{c} {np.mean(v):+.3f} +- {np.std(v, ddof=1) / np.sqrt(seeds):.3f}" for c, v in partial.items())
        print(f"  n={n:4d}  GP tau {np.mean(taus):.3f}  {cells}", flush=True)


def synthetic(seeds: int, sizes: list[int], models: list[str], n_cells: int = 2000) -> None:
    """SYNTHETIC check on nb201 cells, where an encoding learns slowly and one proxy is informative.

    Ground truth: `cell` (bench_predictors' NAS-Bench-201-like accuracy) and `pairwise` (predictors.synthetic,
    noise 0.02: interactions the one-hot GP learns slowly). Proxies: `synthetic`, the truth's normal score plus
    independent Gaussian noise at correlation rho (0.80 and 0.85: Kendall tau ~0.59 and ~0.64, like the best
    proxy of the held-back table), `noise` (pure noise), and the real `flops` and `params` of each cell
    (analytic cost model, C=16, N=5).
    """
    from scipy.stats import norm, rankdata

    from bench_predictors import cell_objective, distinct_sample
    from predictors import kendall_tau, make_objective
    from supernets import get_config

    space, config = get_space("nb201"), get_config("nb201")
    archs = distinct_sample(space, n_cells, 0)
    cost = [config.cost(a) for a in archs]
    for kind, rho in (("cell", 0.80), ("pairwise", 0.85)):
        f = cell_objective(space) if kind == "cell" else make_objective(space, "pairwise", 0.02, seed=0)
        y = np.array([f(a) for a in archs])
        rng = np.random.default_rng(123)
        z = norm.ppf((rankdata(y) - 0.5) / len(y))
        values = {"synthetic": rho * z + np.sqrt(1 - rho**2) * rng.normal(size=len(y)),
                  "noise": rng.normal(size=len(y)),
                  "flops": np.log([max(c.macs, 1) for c in cost]), "params": np.log([max(c.params, 1) for c in cost])}
        rows = {str(a): {k: float(v[i]) for k, v in values.items()} for i, a in enumerate(archs)}
        source = TableSource(rows, list(values))
        taus = ", ".join(f"{k} {kendall_tau(y, v):+.3f}" for k, v in values.items())
        print(f"\nSYNTHETIC: nb201 cells ({len(archs)}), ground truth `{kind}`, proxy `synthetic` at rho {rho}; "
              f"proxy taus over all cells: {taus}; train on n, test on the rest, {seeds} seeds")
        compare(space, archs, y, source, sizes, seeds, models)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", choices=["compute-macro", "batch-nb201", "timing", "report", "synthetic",
                                                   "residual"])
    parser.add_argument("--n", type=int, default=None, help="networks (macro: 500, nb201: 100)")
    parser.add_argument("--proxies", default=None, help=f"comma-separated (compute-macro and residual: {CHEAP}; "
                        "batch-nb201: synflow,jacov,nwot)")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--sizes", default="25,50,100,200")
    parser.add_argument("--table", default="macro_proxies.jsonl", help="cache file under benchmarks/out/")
    parser.add_argument("--weights", default=None, help="compute-macro: a macro supernet checkpoint whose weights "
                        "the networks inherit (columns @supernet) instead of a random init")
    parser.add_argument("--models", default="gp", help="predictors for the report (comma-separated)")
    parser.add_argument("--features", default="cheap=synflow,params,flops;all=synflow,nwot,jacov,params,flops",
                        help="zc feature sets for the report: label=proxy,proxy;label=...")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sizes = [int(s) for s in args.sizes.split(",")]

    def proxies(default: str) -> list[str]:
        return [p.strip() for p in (args.proxies or default).split(",") if p.strip()]

    if args.phase == "synthetic":  # needs no data
        return synthetic(args.seeds, sizes, args.models.split(","))
    if not MACRO.is_file() or not CIFAR.is_dir():
        sys.exit(f"needs {MACRO} and {CIFAR}")
    if args.phase == "compute-macro":
        compute_macro(args.n or 500, proxies(CHEAP), args.table, args.weights)
    elif args.phase == "timing":
        timing(args.n or 4)
    elif args.phase == "batch-nb201":
        batch_nb201(args.n or 100, tuple(proxies("synflow,jacov,nwot")))
    elif args.phase == "residual":
        residual(args.seeds, sizes, proxies(CHEAP))
    else:
        sets = {part.split("=")[0]: part.split("=")[1].split(",") for part in args.features.split(";")}
        report(args.seeds, sizes, args.models.split(","), sets)


if __name__ == "__main__":
    main()
