// The `tessel` command. Placeholder until the CLI lands.
#include <cstdio>
int main() { std::puts("tessel"); return 0; }
