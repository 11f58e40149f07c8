// the live page's script: being written
