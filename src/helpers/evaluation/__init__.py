"""Stage 4, evaluation: intervals (multi-bootstrap over models and images), agreement between seeds, SNR
(Woerl et al., CVPR 2023), perturbation baselines and faithfulness metrics (Brunke et al. 2020; Petsiuk et al. 2018),
sanity checks (Adebayo et al. 2018), and the statistics of CLEAR maps and deep dreams."""
