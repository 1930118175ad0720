// Prompt evaluation with llama.cpp (node-llama-cpp 3.21.1, CPU, prebuilt binary, never built or
// downloaded) of fixed token ids: each text from an empty context, best of N runs after a warm-up.
//
//   node eval.mjs --model M.gguf --ids ids.txt --threads 2 [--runs 3] [--batch 256]
//
// Prints one JSON line: tokens, best and median seconds over the runs, tokens/s.
import fs from "node:fs";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, a, i, all) => {
  if (a.startsWith("--")) pairs.push([a.slice(2), all[i + 1]]);
  return pairs;
}, []));
const runs = Number(args.runs ?? 3);
const threads = Number(args.threads ?? 2);
const batch = Number(args.batch ?? 256);
const texts = fs.readFileSync(args.ids, "utf8").trim().split("\n").map(
    (line) => line.trim().split(/\s+/).map(Number));
const longest = Math.max(...texts.map((t) => t.length));

const llama = await getLlama({gpu: false, build: "never", usePrebuiltBinaries: true,
                              logLevel: args["log-level"] ?? LlamaLogLevel.error});
const model = await llama.loadModel({modelPath: args.model, gpuLayers: 0, useMmap: true});
const context = await model.createContext({contextSize: longest, batchSize: batch,
                                          threads, flashAttention: false, sequences: 1});
const sequence = context.getSequence();
const times = [];
for (let r = 0; r <= runs; r++) {
  const start = process.hrtime.bigint();
  for (const ids of texts) {
    await sequence.clearHistory();
    await sequence.evaluateWithoutGeneratingNewTokens(ids);
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (r > 0) times.push(seconds);  // run 0 is the warm-up
}
times.sort((a, b) => a - b);
const tokens = texts.reduce((n, t) => n + t.length, 0);
console.log(JSON.stringify({
  tool: "llama.cpp", model: args.model, threads, batch, tokens, runs,
  best_s: times[0], median_s: times[Math.floor(times.length / 2)], tokens_per_s: tokens / times[0],
  build: llama.buildType, cpu_math_cores: llama.cpuMathCores,
}));
await context.dispose();
await model.dispose();
await llama.dispose();
