# The two halves of the dev pool's 16 models (sourced by the bench_*.sh scripts). Ranked by
# mean judge score and dealt A B B A A B B A ..., so each half spans weak to strong and holds
# one of the two FuseChat models that win most prompts. Tune on A; check on B (never tuned on).
HALF_A=oasst-sft-pythia-12b,chatglm2-6b,minichat-3b,vicuna-7b-v1.5,wizardlm-13b,gpt-3.5-turbo-1106,Mixtral-8x7B-Instruct-v0.1_concise,FuseChat-Gemma-2-9B-Instruct
HALF_B=falcon-7b-instruct,alpaca-7b,gemma-2b-it,baize-v2-13b,gemma-7b-it,Qwen-14B-Chat,claude-2.1,FuseChat-Llama-3.2-3B-Instruct
