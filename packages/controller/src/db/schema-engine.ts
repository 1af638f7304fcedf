import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type * as SchemaEngineWasm from '@prisma/schema-engine-wasm/schema_engine_bg';
import pg from 'pg';
import { schemaEngineAdapter } from './engine-adapter.js';

// Prisma's own schema engine compiled to WebAssembly (the differ and migration history logic
// behind `prisma migrate`), run through a driver adapter because the native engine cannot be
// fetched here. Development and tests only: the controller never loads it.

export type SchemaEngine = SchemaEngineWasm.SchemaEngine;

// Node has WebAssembly; this workspace's typings (lib ES2024, no DOM) do not declare it.
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (
    module: object,
    imports: Record<string, object>,
  ) => { exports: Record<string, unknown> };
};

let lastPanic: string | undefined;
let engineModule: Promise<typeof SchemaEngineWasm> | undefined;

function loadEngineModule(): Promise<typeof SchemaEngineWasm> {
  // wasm-bindgen keeps one instance per module, so instantiate once per process.
  engineModule ??= (async () => {
    // Where the engine leaves a Rust panic's message before it throws "unreachable", which
    // may escape as an uncaught exception: so say it on stderr too.
    Object.assign(globalThis, {
      PRISMA_WASM_PANIC_REGISTRY: {
        set_message(message: string) {
          lastPanic = message;
          process.stderr.write(`schema engine panicked: ${message}\n`);
        },
      },
    });
    const glue = await import('@prisma/schema-engine-wasm/schema_engine_bg');
    const gluePath = createRequire(import.meta.url).resolve(
      '@prisma/schema-engine-wasm/schema_engine_bg',
    );
    const bytes = await readFile(join(dirname(gluePath), 'schema_engine_bg.wasm'));
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), {
      './schema_engine_bg.js': glue,
    });
    glue.__wbg_set_wasm(instance.exports);
    (instance.exports.__wbindgen_start as () => void)();
    return glue;
  })();
  return engineModule;
}

export interface OpenSchemaEngine {
  engine: SchemaEngine;
  close(): Promise<void>;
}

/** A schema engine that reads and writes the Postgres database at `url`. */
export async function openSchemaEngine(url: string): Promise<OpenSchemaEngine> {
  const { SchemaEngine } = await loadEngineModule();
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  const engine = await SchemaEngine.new(
    { datamodels: undefined },
    () => {},
    schemaEngineAdapter(pool),
  );
  return {
    engine,
    async close() {
      engine.free();
      await pool.end();
    },
  };
}

/** Runs an engine call; a Rust panic becomes an error carrying the panic's message. */
export async function runEngine<T>(call: () => Promise<T>): Promise<T> {
  lastPanic = undefined;
  try {
    return await call();
  } catch (error) {
    if (lastPanic === undefined) throw error;
    throw new Error(`schema engine panicked: ${lastPanic}`, { cause: error });
  }
}
