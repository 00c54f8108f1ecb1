#!/usr/bin/env node
// Entry point that buf runs (see buf.gen.yaml): reads a CodeGeneratorRequest on stdin and
// writes a CodeGeneratorResponse to stdout.
import { runNodeJs } from "@bufbuild/protoplugin";
import { protocastPlugin } from "./protocast-plugin.js";

runNodeJs(protocastPlugin);
