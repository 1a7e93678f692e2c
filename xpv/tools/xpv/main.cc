// xpv: the toolstack command (xpv/toolstack/cli.h).
#include "xpv/toolstack/cli.h"

int main(int argc, char** argv) {
  return xpv::toolstack::Main(argc, argv);
}
