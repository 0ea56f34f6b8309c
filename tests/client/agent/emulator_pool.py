"""The agent's emulator pool as it was: a requests.Session and the emulators' URLs."""

import os

import requests


class EmulatorPool:
    def __init__(self):
        self.session = requests.Session()
        self.urls = os.environ["EMULATOR_URLS"].split(",")

    def status(self, index):
        return self.session.get(f"{self.urls[index]}/status", timeout=10).json()

    def act(self, index, action):
        return self.session.post(f"{self.urls[index]}/action", json={"action": action},
                                 timeout=10).json()
