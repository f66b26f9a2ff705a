import { createApp } from "vue";
import "../../shared/styles.css";
import LandingApp from "./LandingApp.vue";

createApp(LandingApp).mount("#app");
