// llama.cpp (npm node-llama-cpp 3.21.1, CPU prebuilt binary, never built or downloaded) for
// make_llamacpp_references.py: for each job, loads its GGUF file and evaluates each text from an
// empty context (flash attention off, F32 KV cache, embeddings on, pooling none), keeping the
// last token's state, as the shared fixtures' references were made.
//
//   node bench/forward/llamacpp/references.mjs JOBS.json OUT.json
//
// JOBS.json: [{"model": "x.gguf", "texts": [[ids], ...]}, ...]
import fs from "node:fs";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const [jobsPath, outPath] = process.argv.slice(2);
const jobs = JSON.parse(fs.readFileSync(jobsPath, "utf8"));
const llama = await getLlama({gpu: false, build: "never", usePrebuiltBinaries: true,
                              logLevel: LlamaLogLevel.error});
const contextOptions = {contextSize: 64, batchSize: 64, sequences: 1, threads: 2,
                        flashAttention: false, experimentalKvCacheKeyType: "F32",
                        experimentalKvCacheValueType: "F32", _embeddings: true};
const out = [];
for (const job of jobs) {
  const model = await llama.loadModel({modelPath: job.model, gpuLayers: 0, useMmap: false});
  const context = await model.createContext(contextOptions);
  const sequence = context.getSequence();
  const embeddings = [];
  for (const ids of job.texts) {
    await sequence.clearHistory();
    // As LlamaEmbeddingContext.getEmbeddingFor does, without its BOS/EOS handling: evaluate,
    // stop before sampling, read the last token's embedding.
    for await (const token of sequence.evaluate(ids, {_noSampling: true})) break;
    embeddings.push(Array.from(context._ctx.getEmbedding(ids.length)));
  }
  out.push({model: job.model, embeddings});
  await context.dispose();
  await model.dispose();
}
const {_embeddings, ...shown} = contextOptions;
fs.writeFileSync(outPath, JSON.stringify({
  jobs: out,
  context_options: {...contextOptions},
  runtime: {node: process.version, systemInfo: llama.systemInfo, buildType: llama.buildType,
            llamaCppRelease: llama.llamaCppRelease, cpuMathCores: llama.cpuMathCores,
            nodeLlamaCpp: JSON.parse(fs.readFileSync(
                new URL("node_modules/node-llama-cpp/package.json", import.meta.url), "utf8")).version},
}));
await llama.dispose();
