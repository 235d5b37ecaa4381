"""End-to-end tests: real simulators and Mosquitto -> drivers -> rules -> dispatcher -> WIP."""
