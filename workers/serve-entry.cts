/**
 * The file Piscina loads in each encoder thread: CommonJS on purpose. Piscina loads its
 * worker file with require() first; for an ES module that is Node's require(esm), which
 * can race with an import() of the same module graph in the thread and then aborts the
 * whole process (V8 fatal error "v8::Module::IsGraphAsync must be used on an instantiated
 * module", seen once under the test runner on Node 20.20). From here, serve.js and its
 * graph are loaded with import() only.
 */
async function serveEntry(task: unknown): Promise<unknown> {
  const { default: serve } = await import('./serve.js');
  return serve(task as Parameters<typeof serve>[0]);
}

export = serveEntry;
