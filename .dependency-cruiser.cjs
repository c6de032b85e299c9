/**
 * Import boundaries (npm run boundaries): the rules of CONTRIBUTING.md, checked.
 * @type {import('dependency-cruiser').IConfiguration}
 */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'An import cycle (type-only imports count: they tie the files together just the same). Break it by moving the shared type or constant into its own file.',
      from: { path: '^(sdk|plugins|cli)/' },
      to: { circular: true },
    },
    {
      name: 'plugin-imports-another-plugin',
      severity: 'error',
      comment: 'A plugin imports only from sdk/ and libraries, never from another plugin. If it needs another plugin to do something, add a hook.',
      from: { path: '^plugins/([^/]+)/' },
      to: { path: '^plugins/', pathNot: '^plugins/$1/' },
    },
    {
      name: 'sdk-imports-outside-the-kernel',
      severity: 'error',
      comment: 'sdk/ is the kernel: it imports node: modules, tapable and its own files, nothing else (no plugin, no CLI, no other package).',
      from: { path: '^sdk/' },
      to: { dependencyTypesNot: ['core'], pathNot: ['^sdk/', '^node_modules/tapable/'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^dist/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['stem-source', 'import', 'types', 'default'], extensions: ['.ts', '.js'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
